"""`shortinterest`: the console entry point.

Each subcommand lives in the module that owns its work and exposes `add_arguments(parser)` and
`run(args) -> int`; this file only wires them up, importing a module when its command is chosen so
`shortinterest gateway` does not pay for Dagster's import time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "gateway": ("proto_client.simulator.command", "serve the simulated OpenD gateway"),
    "migrate": ("pipelines.warehouse.command", "upgrade the warehouse schema to the latest version"),
    "load": ("pipelines.crawl.load_command", "crawl short interest for the watchlist into the warehouse"),
    "status": ("pipelines.crawl.status_command", "show per-code load status from the warehouse"),
    "fetch": (
        "pipelines.access.fetch_command",
        "print a live page (or the whole history) of one code",
    ),
    "export": ("pipelines.access.export_command", "write stored history as CSV, Parquet or JSON"),
    "demo": ("pipelines.demo", "start the demo gateway, migrate, and run the Dagster job end to end"),
    "ui": ("pipelines.ui", "open the Dagster UI (webserver and daemon) on the demo's instance"),
    "watchlist": ("pipelines.universe.command", "resolve the watchlist's groups, plates and markets now and show it"),
    "chart": ("pipelines.analysis.chart_command", "draw codes' short interest against the close price as a PNG"),
    "check-env": ("pipelines.env_file_check", "refuse an environment file (it holds passwords) others can read"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shortinterest",
        description="Short-interest ETL from the OpenD gateway into Postgres.",
        epilog="Configuration comes from environment variables: docs/operators/configuration.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(cmd)
            cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
