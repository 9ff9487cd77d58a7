"""How one load's throughput grows with the number of gateways (OPEND_GATEWAYS), one account's budget each.

Starts 1, 2 and 4 simulated gateways, each allowing 10 requests per 5 s (its own account), and runs one
`shortinterest load --full` over all of them: 20 codes per gateway, each a whole history of 7 pages (140
requests per gateway, fourteen windows), into one Postgres warehouse, each run on codes not loaded before.
A worker sends its window's requests one after another, not in one burst, so the last window ends a little
after a perfect client's would: a fixed cost that a real load, hours long, never notices, and that fourteen
windows keep to about 1 %.
Over the busy period (first to last accepted request, across the gateways) it measures:

* budget_use: the shortest span N perfect sliding-window clients need for that many requests, over the
  span observed (1.0 = every slot of all N budgets used the instant it opened; the limiter's margin
  costs a few percent);
* scaling: requests per second with N gateways over requests per second with one (target >= 0.95 N);
* rejected: requests any gateway refused for frequency (target: 0).

Usage: python bench/gateway_scaling.py [--rate 10/5] [--per-gateway 20] [--database-url URL]
Writes bench/results/gateway_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.rate_budget import budget_use  # noqa: E402
from pipelines.warehouse import upgrade  # noqa: E402
from proto_client.simulator.demo_data import demo_codes  # noqa: E402
from tests.support.crawl import REPO_ROOT, cli_command, cli_env, read_stats  # noqa: E402
from tests.support.databases import fresh_postgres_database  # noqa: E402
from tests.support.gateway import GatewayProcess, start_gateway  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
AS_OF = "2026-05-15"
GATEWAY_COUNTS = (1, 2, 4)
TARGET = 0.95


def _gateways_env(gateways: Sequence[GatewayProcess], rate: str, url: str) -> dict[str, str]:
    return cli_env(
        OPEND_GATEWAYS=",".join(f"{g.host}:{g.port}" for g in gateways),
        OPEND_RATE_LIMIT=rate,
        SHORTINTEREST_DATABASE_URL=url,
    )


def _load(env: dict[str, str], codes: Sequence[str], *extra: str) -> float:
    started = time.monotonic()
    proc = subprocess.run(
        cli_command("load", *extra, *codes), env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.monotonic() - started


def run_once(count: int, rate: str, codes: Sequence[str], url: str, extra_codes: int) -> dict[str, object]:
    requests, seconds = (float(x) for x in rate.split("/"))
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        gateways = []
        for index in range(count):
            stats = workdir / f"gateway-{index}.json"
            args = ["--rate", rate, "--as-of", AS_OF, "--extra-codes", str(extra_codes), "--stats-file", str(stats)]
            gateway = start_gateway(args)
            stack.callback(gateway.stop)
            gateways.append(gateway)
        wall = _load(_gateways_env(gateways, rate, url), codes, "--full")
        for gateway in gateways:
            gateway.stop()  # the stats file is complete once the process has exited
        stats = [read_stats(workdir / f"gateway-{index}.json") for index in range(count)]
    accepted_at = sorted(t for s in stats for t in s["accepted_at"])
    accepted = sum(int(s["accepted"]) for s in stats)
    busy = max(accepted_at) - min(accepted_at)
    return {
        "gateways": count,
        "codes": len(codes),
        "accepted": accepted,
        "per_gateway": [int(s["accepted"]) for s in stats],
        "rejected": sum(int(s["rejected_rate_limit"]) for s in stats),
        "busy_seconds": round(busy, 3),
        "requests_per_second": round(accepted / busy, 4) if busy > 0 else None,
        "budget_use": round(budget_use(accepted_at, int(requests) * count, seconds), 4),
        "wall_seconds": round(wall, 2),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="bench.gateway_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="10/5", help="each gateway's limit, N/SECONDS (default: 10/5)")
    parser.add_argument("--per-gateway", type=int, default=20, help="codes per gateway, 7 pages each (default: 20)")
    parser.add_argument("--database-url", default=None, help="warehouse (default: a throwaway Postgres database)")
    args = parser.parse_args(argv)
    total = args.per_gateway * sum(GATEWAY_COUNTS)
    extra = 2 * total  # synthetic codes alternate between the markets; the US ones all have 7 pages
    codes = [code for code in demo_codes(extra) if code.startswith("US.SYN")][:total]
    with ExitStack() as stack:
        url = args.database_url or stack.enter_context(fresh_postgres_database("si_bench"))
        upgrade(url)
        runs = []
        for count in GATEWAY_COUNTS:
            share, codes = codes[: count * args.per_gateway], codes[count * args.per_gateway :]
            runs.append(run_once(count, args.rate, share, url, extra))
    single = runs[0]["requests_per_second"]
    for run in runs:
        rps = run["requests_per_second"]
        run["scaling"] = round(rps / single, 4) if rps and single else None  # type: ignore[operator]
    result: dict[str, object] = {
        "benchmark": "gateway_scaling",
        "rate": args.rate,
        "per_gateway": args.per_gateway,
        "target_budget_use": TARGET,
        "runs": runs,
        "ok": all(
            r["rejected"] == 0 and r["budget_use"] >= TARGET and (r["scaling"] or 0) >= TARGET * r["gateways"]  # type: ignore[operator]
            for r in runs
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
