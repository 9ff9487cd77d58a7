"""How much of the gateway's rate budget concurrent loaders use through the shared limiter.

Starts a simulated gateway with a small window (default 10/5, to keep the run short), then for 1, 2 and
4 concurrent `shortinterest load` processes sharing one Postgres warehouse measures, over the busy period
(first to last accepted request):

* budget_use: the shortest span a perfect sliding-window client needs for that many requests, over the
  span observed (1.0 = every slot used the instant it opened; the limiter's margin costs a few percent);
* rejected: requests the gateway refused for frequency (target: 0).

Usage: python bench/rate_budget.py [--rate 10/5] [--codes 6] [--database-url URL]
Writes bench/results/rate_budget.json.
"""

from __future__ import annotations

import argparse
import json
import math
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

from pipelines.warehouse import upgrade  # noqa: E402
from tests.support.crawl import REPO_ROOT, cli_command, cli_env, read_stats  # noqa: E402
from tests.support.databases import fresh_postgres_database  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
AS_OF = "2026-05-15"
# Seven pages of history each at AS_OF.
US_CODES = ("US.AAPL", "US.TSLA", "US.SPY", "US.NVDA", "US.MSFT", "US.QQQ")


def budget_use(accepted_at: Sequence[float], requests: int, seconds: float) -> float:
    times = sorted(accepted_at)
    ideal = (math.ceil(len(times) / requests) - 1) * seconds
    span = times[-1] - times[0]
    return 1.0 if span <= 0 else min(ideal / span, 1.0) if ideal > 0 else 1.0


def run_once(loaders: int, rate: str, codes: Sequence[str], database_url: str | None) -> dict[str, object]:
    requests, seconds = (float(x) for x in rate.split("/"))
    with ExitStack() as stack:
        url = database_url or stack.enter_context(fresh_postgres_database("si_bench"))
        upgrade(url)
        stats_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "stats.json"
        gateway = start_gateway(["--rate", rate, "--as-of", AS_OF, "--stats-file", str(stats_file)])
        stack.callback(gateway.stop)
        env = cli_env(**gateway.env(), OPEND_RATE_LIMIT=rate, SHORTINTEREST_DATABASE_URL=url)
        shares = [list(codes[i::loaders]) for i in range(loaders)]
        started = time.monotonic()
        procs = [
            subprocess.Popen(cli_command("load", "--full", *share), env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
            for share in shares
        ]
        exits = [proc.wait(timeout=600) for proc in procs]
        wall = time.monotonic() - started
        stats = read_stats(stats_file)
    accepted_at = stats["accepted_at"]
    return {
        "loaders": loaders,
        "exit_codes": exits,
        "accepted": stats["accepted"],
        "rejected": stats["rejected_rate_limit"],
        "busy_seconds": round(max(accepted_at) - min(accepted_at), 3),
        "budget_use": round(budget_use(accepted_at, int(requests), seconds), 4),
        "wall_seconds": round(wall, 2),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="bench.rate_budget", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="10/5", help="gateway and loader limit, N/SECONDS (default: 10/5)")
    parser.add_argument("--codes", type=int, default=6, choices=range(1, len(US_CODES) + 1), metavar="1-6")
    parser.add_argument("--database-url", default=None, help="warehouse (default: a throwaway Postgres database)")
    args = parser.parse_args(argv)
    runs = [run_once(n, args.rate, US_CODES[: args.codes], args.database_url) for n in (1, 2, 4)]
    result: dict[str, object] = {
        "benchmark": "rate_budget",
        "rate": args.rate,
        "codes": list(US_CODES[: args.codes]),
        "target_budget_use": 0.95,
        "runs": runs,
        "ok": all(r["rejected"] == 0 and r["budget_use"] >= 0.95 for r in runs),  # type: ignore[operator]
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rate_budget.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
