"""Run every benchmark and write a short report: bench/results/REPORT.md (and the JSON each one writes).

    .venv/bin/python bench/run_all.py [--only NAME ...] [--skip NAME ...]

Each benchmark runs as its own process (as a person would run it), so one failing does not stop the
others; the report says what was measured, how, and where each target stands. Figures are ratios or
counts from one run on this machine, not promises: run it again on a quiet machine before comparing.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


@dataclass(frozen=True)
class Figure:
    name: str
    measured: str
    target: str
    met: bool


def _rate_budget(r: dict) -> list[Figure]:
    return [
        Figure(
            f"budget use, {run['loaders']} loader(s)",
            f"{run['budget_use']:.1%} of the allowed requests, {run['rejected']} rejected",
            ">= 95 %, 0 rejected",
            run["budget_use"] >= 0.95 and run["rejected"] == 0,
        )
        for run in r["runs"]
    ]


def _gateway_scaling(r: dict) -> list[Figure]:
    return [
        Figure(
            f"aggregate budget use, {run['gateways']} gateway(s) in one load",
            f"{run['budget_use']:.1%} of {run['gateways']} budgets ({run['accepted']} requests, per gateway "
            f"{run['per_gateway']}), {run['rejected']} rejected; throughput {run['scaling']:.2f} x one gateway's",
            f">= 95 %, 0 rejected, >= {0.95 * run['gateways']:.2f} x",
            run["budget_use"] >= 0.95 and run["rejected"] == 0 and run["scaling"] >= 0.95 * run["gateways"],
        )
        for run in r["runs"]
    ]


def _requests_per_code(r: dict) -> list[Figure]:
    return [
        Figure(
            "requests, weekly refresh",
            f"{r['weekly_requests']} for {r['codes']} codes",
            f"floor {r['weekly_floor']} (1 per code)",
            r["weekly_requests"] <= r["weekly_floor"],
        ),
        Figure(
            "requests, full crawl",
            f"{r['full_requests']} for {r['codes']} codes",
            f"floor {r['full_floor']} (ceil(rows/50) per code)",
            r["full_requests"] <= r["full_floor"],
        ),
    ]


def _page_write_latency(r: dict) -> list[Figure]:
    figures = []
    for database in ("postgresql", "sqlite"):
        for case, label in (
            ("all_new", "50 new"),
            ("all_unchanged", "50 unchanged"),
            ("three_revised", "3 of 50 revised"),
        ):
            times = r[database][case]
            figures.append(
                Figure(
                    f"page write p50 / p99, {database}, {label}",
                    f"{times['p50_ms']:.1f} / {times['p99_ms']:.1f} ms ({times['pages']} pages; client CPU p50 "
                    f"{times['client_cpu_p50_ms']:.1f} ms)",
                    f"p50 <= {r['target_p50_ms']:g} ms" if database == "postgresql" else "(no target)",
                    database != "postgresql" or times["p50_ms"] <= r["target_p50_ms"],
                )
            )
    return figures


def _load_overhead(r: dict) -> list[Figure]:
    first, refresh = r["first_load"], r["refresh"]

    def rss(load: dict) -> str:
        return f"{load['peak_rss_mb_first_tenth']:.0f} -> {load['peak_rss_mb_end']:.0f} MB ({load['rss_growth']:.2f}x)"

    return [
        Figure(
            f"load overhead, refresh of {r['codes']} codes, rate limit lifted",
            f"{refresh['ms_per_code']:.1f} ms per code ({refresh['pages']} pages; loader CPU "
            f"{refresh['loader_cpu_ms_per_code']:.1f} ms per code)",
            f"<= {r['target_refresh_ms_per_code']:g} ms per code",
            refresh["ms_per_code"] <= r["target_refresh_ms_per_code"],
        ),
        Figure(
            f"load overhead, first load of {r['codes']} codes, rate limit lifted",
            f"{first['ms_per_code']:.1f} ms per code, {first['ms_per_page']:.1f} ms per page ({first['pages']} pages; "
            f"loader CPU {first['loader_cpu_ms_per_code']:.1f} ms per code)",
            "(no target)",
            True,
        ),
        Figure(
            "peak RSS, first tenth of the codes -> all, first load / refresh",
            f"{rss(first)} / {rss(refresh)}",
            f"flat: <= {r['target_rss_growth']:.2f}x",
            max(first["rss_growth"], refresh["rss_growth"]) <= r["target_rss_growth"],
        ),
    ]


def _client_latency(r: dict) -> list[Figure]:
    return [
        Figure(
            "client latency / futu-api latency (median)",
            f"{r['ratio_median']:.2f} ({r['ours']['median_ms']:.2f} vs {r['futu_api']['median_ms']:.2f} ms)",
            f"<= {r['target_ratio']}",
            r["ratio_median"] <= r["target_ratio"],
        )
    ]


def _encryption_latency(r: dict) -> list[Figure]:
    plain = r["links"]["plain"]["median_ms"]
    return [
        Figure(
            f"latency added by encryption, {mode} (median)",
            f"{added:+.3f} ms a request ({r['links'][mode]['median_ms']:.2f} vs {plain:.2f} ms plain, ratio "
            f"{r['ratio_median'][mode]:.2f}); cipher work alone {r['cipher_work_ms'][mode]:.3f} ms, both ends",
            f"<= {r['target_added_ms']} ms",
            added <= r["target_added_ms"],
        )
        for mode, added in r["added_median_ms"].items()
    ]


def _dagster_overhead(r: dict) -> list[Figure]:
    return [
        Figure(
            f"Dagster overhead, {r['codes']}-code incremental refresh",
            f"{r['overhead_seconds_per_code']:.3f} s per code",
            f"< {r['target_overhead_seconds_per_code']} s per code",
            r["overhead_seconds_per_code"] < r["target_overhead_seconds_per_code"],
        )
    ]


def _event_log_footprint(r: dict) -> list[Figure]:
    mib = 1024 * 1024
    return [
        Figure(
            "one code's materialization, serialized",
            f"{r['materialization_bytes']} bytes ({r['materialization_ratio_to_target']:.2f} x target)",
            "<= 1.5 KB",
            r["materialization_ratio_to_target"] <= 1,
        ),
        Figure(
            "movers report materialization, serialized",
            f"{r['report_bytes'] / 1024:.0f} KB ({r['report_ratio_to_target']:.2f} x target)",
            "<= 150 KB",
            r["report_ratio_to_target"] <= 1,
        ),
        Figure(
            f"Dagster PostgreSQL growth, {r['extrapolated_codes']}-code weekly refresh "
            f"(extrapolated from {r['codes']} codes)",
            f"{r['refresh_bytes_10k_extrapolated'] / mib:.1f} MB ({r['refresh_ratio_to_target']:.2f} x target), "
            f"{r['year_bytes_10k_extrapolated'] / 1024 / mib:.2f} GB a year",
            "<= 25 MB",
            r["refresh_ratio_to_target"] <= 1,
        ),
    ]


def _export_memory(r: dict) -> list[Figure]:
    return [
        Figure(
            f"export peak RSS, {fmt}",
            f"{run['peak_mb']:.0f} MB for {run['rows']:,} rows; {run['growth']:.2f} times the peak for "
            f"{run['tenth_rows']:,} rows ({run['tenth_peak_mb']:.0f} MB)",
            f"<= {r['target_peak_mb']} MB, <= {r['target_growth']} times",
            run["peak_mb"] <= r["target_peak_mb"] and run["growth"] <= r["target_growth"],
        )
        for fmt, run in r["runs"].items()
    ]


def _analyst_queries(r: dict) -> list[Figure]:
    worst, targets = r["worst_ms"], r["targets_ms"]
    first = r.get("first_definitions_ms", {})

    def cpu(name: str) -> str:
        value = r.get("cpu_ms", {}).get(name)
        return "n/a" if value is None else f"{value:.1f} ms"

    def against_first(query: str) -> str:
        return f"; the first (window) definitions: {first[query]:,.0f} ms" if query in first else ""

    def server(name: str) -> str:
        value = r.get("server_ms", {}).get(name)
        return "" if value is None else f"; in the server (EXPLAIN ANALYZE, median) {value:.1f} ms"

    pages = r["page_upsert_p50_ms"]
    return [
        Figure(
            f"{label}, {r['codes']:,} codes, {r['rows']:,} rows",
            f"{worst[name]:.1f} ms (median of {r['repeat']}, rows fetched; best {r['best_ms'][name]:.1f}; "
            f"CPU per run, server and client, {cpu(name)}; load average {r['load_average'][0]:.1f})"
            f"{server(name)}{against_first(query)}",
            f"<= {targets[name]:.0f} ms",
            worst[name] <= targets[name],
        )
        for name, label, query in (
            ("latest", "latest report of every code", "latest"),
            ("movers", "one date's top-10 movers, slowest of up/down x US/HK", "movers_up_us"),
            ("one_code", "one code's changes, slowest of US/HK", "one_code_us"),
        )
    ] + [
        Figure(
            "50-row page upsert on that warehouse, p50, slowest case",
            f"{worst['page_upsert_p50']:.1f} ms; with/without the views' triggers and index: "
            + ", ".join(f"{k} {v['with'] / v['without']:.2f}" for k, v in pages.items())
            + _page_parts(pages),
            f"<= {targets['page_upsert_p50']:.0f} ms",
            worst["page_upsert_p50"] <= targets["page_upsert_p50"],
        )
    ]


def _page_parts(pages: dict) -> str:
    """The client's CPU and the triggers' server time per page, slowest case, where the results carry them."""
    if not all("client_cpu" in v and "triggers_server" in v for v in pages.values()):
        return ""
    cpu = max(v["client_cpu"] for v in pages.values())
    triggers = max(v["triggers_server"] for v in pages.values())
    return f"; of a page, this client's CPU up to {cpu:.1f} ms, the triggers in the server up to {triggers:.2f} ms"


def _as_of_queries(r: dict) -> list[Figure]:
    worst, targets, ratios = r["worst_ms"], r["targets_ms"], r["ratio_to_target"]
    figures = [
        Figure(
            f"{label}, {r['rows']:,} rows, {r['history_rows']:,} versions in history",
            f"{worst[name]:.1f} ms (median of {r['repeat']}, slowest of its cases; {ratios[name]:.2f} x the target; "
            f"load average {r['load_average'][0]:.1f})",
            f"<= {targets[name]:.0f} ms",
            worst[name] <= targets[name],
        )
        for name, label in (
            ("cross_section", "every code's newest report as known at a moment (past, now)"),
            ("one_code", "one code's history as known at a moment, slowest of US/HK x past/now"),
            ("page_write_p50", "50-row page write with 3 rows revised, p50"),
        )
    ]
    return [
        *figures,
        Figure(
            "history rows written by a page that revises nothing",
            str(r["unchanged_history_rows"]),
            "0",
            r["unchanged_history_rows"] == 0,
        ),
    ]


def _universe_scale(r: dict) -> list[Figure]:
    return [
        Figure(
            f"resolve a {r['market_members']:,}-code market (markets: [US])",
            f"{r['resolve_requests']} requests, {r['resolve_ratio_to_target']:.2f} x the 10 s target "
            f"({r['resolve_first_s']} s first, {r['resolve_again_s']} s again)",
            "<= 5 requests, < 1.00 x",
            r["resolve_requests"] <= 5 and r["resolve_ratio_to_target"] < 1,
        ),
        Figure(
            f"partitions sensor applies a {r['sensor_change_codes']:,}-code universe change",
            f"{r['sensor_ratio_to_target']:.2f} x the 2 s target (evaluation and add); with Dagster's one-by-one "
            f"deletes {r['sensor_with_deletes_ratio_to_target']:.2f} x",
            "< 1.00 x",
            r["sensor_ratio_to_target"] < 1,
        ),
        Figure(
            f"weekly refresh of a resolved {r['refresh_codes']}-code universe against the same codes typed",
            f"{r['refresh_requests_per_code']:.2f} requests per code; {r['refresh_ratio_resolved_to_typed']:.4f} x "
            f"with the day's {r['refresh_listing_requests']} listing requests",
            "1.00 per code; 1.00 x (the listing requests are 2 per market, whatever its size)",
            r["refresh_requests_per_code"] == 1 and r["refresh_ratio_resolved_to_typed"] < 1.01,
        ),
    ]


def _analyst_query_plans(r: dict) -> str:
    sections = [f"### `{name}`\n\n```\n{plan}\n```" for name, plan in r["plans"].items()]
    return "## Analyst query plans (EXPLAIN ANALYZE)\n\n" + "\n\n".join(sections) + "\n"


# Benchmarks whose JSON also carries detail the report appends after the table.
DETAILS: dict[str, Callable[[dict], str]] = {"analyst_queries": _analyst_query_plans}

# name -> (script, JSON it writes, summarizer)
BENCHMARKS: dict[str, tuple[str, str, Callable[[dict], list[Figure]]]] = {
    "rate_budget": ("rate_budget.py", "rate_budget.json", _rate_budget),
    "gateway_scaling": ("gateway_scaling.py", "gateway_scaling.json", _gateway_scaling),
    "requests_per_code": ("requests_per_code.py", "requests_per_code.json", _requests_per_code),
    "page_write_latency": ("page_write_latency.py", "page_write_latency.json", _page_write_latency),
    "load_overhead": ("load_overhead.py", "load_overhead.json", _load_overhead),
    "client_latency": ("client_latency.py", "client_latency.json", _client_latency),
    "encryption_latency": ("encryption_latency.py", "encryption_latency.json", _encryption_latency),
    "dagster_overhead": ("dagster_overhead.py", "dagster_overhead.json", _dagster_overhead),
    "event_log_footprint": ("event_log_footprint.py", "event_log_footprint.json", _event_log_footprint),
    "export_memory": ("export_memory.py", "export_memory.json", _export_memory),
    "analyst_queries": ("analyst_queries.py", "analyst_queries.json", _analyst_queries),
    "as_of_queries": ("as_of_queries.py", "as_of_queries.json", _as_of_queries),
    "universe_scale": ("universe_scale.py", "universe_scale.json", _universe_scale),
}


def _first_paragraph(script: Path) -> str:
    text = script.read_text(encoding="utf-8")
    doc = text.split('"""', 2)[1] if text.startswith('"""') else ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def run_one(name: str) -> tuple[list[Figure], str | None, float]:
    script, output, summarize = BENCHMARKS[name]
    result_path = RESULTS / output
    result_path.unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(BENCH / script)], cwd=BENCH.parent, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0 or not result_path.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        return [], f"exit {proc.returncode}: {tail}", elapsed
    try:
        return summarize(json.loads(result_path.read_text(encoding="utf-8"))), None, elapsed
    except (KeyError, TypeError, ValueError) as exc:
        return [], f"unreadable result {result_path.name}: {exc!r}", elapsed


def render(rows: list[tuple[str, list[Figure], str | None, float]]) -> str:
    lines = [
        "# Benchmark report",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}); one run each, so read the figures as ratios and counts, not times.",
        "",
        "| figure | measured | target | status |",
        "|---|---|---|---|",
    ]
    for name, figures, error, _ in rows:
        if error:
            lines.append(f"| {name} | failed to run | | **error** |")
        for f in figures:
            lines.append(f"| {f.name} | {f.measured} | {f.target} | {'met' if f.met else '**not met**'} |")
    lines += ["", "## How each was measured", ""]
    for name, _, error, elapsed in rows:
        script = BENCH / BENCHMARKS[name][0]
        lines.append(f"- **{name}** (`bench/{script.name}`, {elapsed:.0f} s): {_first_paragraph(script)}")
        if error:
            lines.append(f"  - error: `{error}`")
    for name, _, error, _ in rows:
        if name in DETAILS and not error:
            result = json.loads((RESULTS / BENCHMARKS[name][1]).read_text(encoding="utf-8"))
            lines += ["", DETAILS[name](result)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--skip", nargs="+", choices=sorted(BENCHMARKS), default=[])
    args = parser.parse_args(argv)
    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        print(f"== {name}", flush=True)
        rows.append((name, *run_one(name)))
    report = render(rows)
    (RESULTS / "REPORT.md").write_text(report, encoding="utf-8")
    print(report)
    return 1 if any(error for _, _, error, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
