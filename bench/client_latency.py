"""Per-request latency of OpenDClient against the official futu-api client, on the same simulated gateway.

Both clients ask for the same first pages (num=50) of the same demo codes, interleaved request by request
so drift on the machine hits both alike, taking turns at going first so that neither always runs right
after the other (futu-api keeps three threads of its own running). futu-api's own logging is turned down
to warnings, which only makes it faster: the ratio reported is, if anything, generous to it. Target:
ours/theirs <= 0.5.

    .venv/bin/python bench/client_latency.py [--requests 400] [--warmup 40]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proto_client.client import OpenDClient  # noqa: E402
from proto_client.simulator.demo_data import demo_codes  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "client_latency.json"
TARGET_RATIO = 0.5
AS_OF = "2026-05-01"


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
        "min_ms": ordered[0] * 1000,
    }


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _futu_context(host: str, port: int):  # type: ignore[no-untyped-def]
    from futu import OpenQuoteContext
    from futu.common.ft_logger import logger as futu_logger

    futu_logger.file_level = logging.WARNING
    futu_logger.console_level = logging.WARNING
    return OpenQuoteContext(host=host, port=port)


def _futu_page(ctx, code: str) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    def call() -> object:
        ret, us_df, hk_df = ctx.get_short_interest(code, num=50)
        if ret != 0:
            raise RuntimeError(f"futu-api get_short_interest({code}) failed: {us_df}")
        return us_df if code.startswith("US.") else hk_df

    return call


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="measured requests per client")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per client first")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be at least 1 and --warmup at least 0")

    codes = demo_codes()
    gateway = start_gateway(["--rate", "off", "--as-of", AS_OF])
    ours: list[float] = []
    theirs: list[float] = []
    try:
        ctx = _futu_context(gateway.host, gateway.port)
        try:
            with OpenDClient(gateway.host, gateway.port) as client:
                for i in range(args.warmup + args.requests):
                    code = codes[i % len(codes)]
                    ask_ours = lambda code=code: client.get_short_interest_page(code, num=50)  # noqa: E731
                    if i % 2:  # alternate who goes first, so neither always follows the other's leftovers
                        their_time, our_time = timed(_futu_page(ctx, code)), timed(ask_ours)
                    else:
                        our_time, their_time = timed(ask_ours), timed(_futu_page(ctx, code))
                    if i >= args.warmup:
                        ours.append(our_time)
                        theirs.append(their_time)
        finally:
            ctx.close()
    finally:
        gateway.stop()

    our_summary, their_summary = latency_summary(ours), latency_summary(theirs)
    ratio = our_summary["median_ms"] / their_summary["median_ms"]
    result: dict[str, object] = {
        "benchmark": "client_latency",
        "requests": args.requests,
        "warmup": args.warmup,
        "num": 50,
        "codes": codes,
        "ours": our_summary,
        "futu_api": their_summary,
        "ratio_median": ratio,
        "ratio_mean": our_summary["mean_ms"] / their_summary["mean_ms"],
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"OpenDClient  median {our_summary['median_ms']:.3f} ms  mean {our_summary['mean_ms']:.3f} ms\n"
        f"futu-api     median {their_summary['median_ms']:.3f} ms  mean {their_summary['mean_ms']:.3f} ms\n"
        f"ratio ours/theirs (median) {ratio:.3f}  target <= {TARGET_RATIO}  "
        f"{'met' if result['meets_target'] else 'NOT met'}\n"
        f"written to {args.output}"
    )
    return result


if __name__ == "__main__":
    main()
