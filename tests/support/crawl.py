"""Helpers for crawler tests: run the CLI as users do, and compare the warehouse with the demo data."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.crawl.crawler import open_crawler
from pipelines.warehouse import table_for
from proto_client.security import parse_code
from proto_client.simulator.demo_data import rows_for

REPO_ROOT = Path(__file__).resolve().parents[2]

# Row dataclass field -> warehouse column, where they differ.
_COLUMN_OF = {"timestamp": "source_timestamp"}


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def cli_env(**env: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **env}


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`shortinterest ARGS` in a subprocess with `env` added to the environment."""
    return subprocess.run(
        cli_command(*args), env=cli_env(**env), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


def expected_rows(code: str, as_of: date, revision: int = 0) -> list[tuple[Any, ...]]:
    """What the demo gateway serves for `code`, newest first, as plain tuples."""
    return [dataclasses.astuple(row) for row in rows_for(code, as_of, revision)]


def stored_rows(engine: sa.Engine, code: str) -> list[tuple[Any, ...]]:
    """The warehouse's rows of `code`, newest first, in the row dataclass's field order."""
    table = table_for(parse_code(code).market)
    fields = [f.name for f in dataclasses.fields(rows_for(code, date(2026, 1, 1))[0])]
    columns = [table.c[_COLUMN_OF.get(name, name)] for name in fields]
    query = sa.select(*columns).where(table.c.code == code).order_by(table.c.trade_date.desc())
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def audit_stamps(engine: sa.Engine, code: str) -> dict[date, tuple[Any, Any]]:
    """trade_date -> (first_loaded_at, updated_at) for `code`."""
    table = table_for(parse_code(code).market)
    query = sa.select(table.c.trade_date, table.c.first_loaded_at, table.c.updated_at).where(table.c.code == code)
    with engine.connect() as conn:
        return {row.trade_date: (row.first_loaded_at, row.updated_at) for row in conn.execute(query)}


def read_stats(path: Path) -> dict[str, Any]:
    """The gateway's request counters; a gateway that never saw a request has not written the file yet."""
    if not path.exists():
        return {"requests": 0, "accepted": 0, "rejected_rate_limit": 0, "by_code": {}, "accepted_at": []}
    return json.loads(path.read_text())


def load_history(settings: Settings, codes: Sequence[str]) -> None:
    """Every code's whole history straight through the crawler: the unmeasured setup of a benchmark."""
    print(f"full load of {len(codes)} codes (setup, not measured) ...", flush=True)
    with open_crawler(settings) as crawler:
        failed = [r for r in crawler.crawl_codes(codes) if not r.ok]
    if failed:
        raise RuntimeError(f"setup load failed: {failed[:3]}")
