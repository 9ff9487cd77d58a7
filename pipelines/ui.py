"""`shortinterest ui`: Dagster's webserver and daemon (`dagster dev`) on the demo's instance and this project's
code location, so what `shortinterest demo` materialized is what the UI shows.

`dagster dev` runs in the instance directory (a dagster.yaml in the working directory that is not the
instance's own makes Dagster warn that it is ignored), with the warehouse URL and watchlist made absolute so
the code location reads the same files the demo wrote.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipelines.config import ConfigError, Settings
from pipelines.failures import fail
from pipelines.orchestration.instance import PROJECT_WORKSPACE_YAML, dagster_home
from pipelines.warehouse.engine import normalize_url
from pipelines.warehouse.errors import WarehouseError

DEFAULT_UI_PORT = 3000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address the webserver listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_UI_PORT, help=f"webserver port (default {DEFAULT_UI_PORT})")
    parser.epilog = (
        "The instance is DAGSTER_HOME (default .shortinterest/dagster_home, the one `shortinterest demo` writes); "
        "the code location reads SHORTINTEREST_DATABASE_URL, SHORTINTEREST_WATCHLIST and the OPEND_* variables."
    )


def absolute_sqlite_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative path resolved against `base`; any other URL unchanged."""
    parsed = normalize_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not database or database.startswith(("/", ":memory:", "file:")):
        return url
    return parsed.set(database=str((base / database).resolve())).render_as_string(hide_password=False)


def ui_command(host: str, port: int) -> list[str]:
    location = ["-w", str(PROJECT_WORKSPACE_YAML)] if PROJECT_WORKSPACE_YAML.is_file() else []
    location = location or ["-m", "pipelines.definitions", "-a", "defs"]
    return [sys.executable, "-m", "dagster", "dev", "--host", host, "--port", str(port), *location]


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return fail("shortinterest ui", str(exc), 2)
    try:
        database_url = absolute_sqlite_url(settings.database_url, Path.cwd())
    except WarehouseError as exc:
        return fail("shortinterest ui", str(exc), 2)
    home = dagster_home()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SHORTINTEREST_DATABASE_URL": database_url,
        "SHORTINTEREST_WATCHLIST": str(settings.watchlist_path.resolve()),
        # `dagster dev` is what this command is; Dagster's note that `dg dev` supersedes it is not for our users.
        "PYTHONWARNINGS": "ignore:Function `dev_command` is superseded",
    }
    print(
        f"shortinterest ui: Dagster instance {home}; open http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True
    )
    # Become `dagster dev` rather than wait on it, so Ctrl-C and service managers' signals reach it directly.
    os.chdir(home)
    command = ui_command(args.host, args.port)
    os.execve(command[0], command, env)
