"""The documentation pages that need a warehouse: the generated tables page, and every Python and SQL example on
the analyst pages, run against a PostgreSQL warehouse loaded from the simulated gateway.

A handful of codes with the rate limit lifted, loaded once for the module, then refreshed from a gateway that
revises the newest rows, so the revisions and history examples have something to show.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.cli import main
from pipelines.docs_reference import SCHEMA_PAGE, schema, stale_pages
from tests.conftest import migrated_engine
from tests.support.databases import fresh_postgres_database
from tests.support.docs_pages import DOCS, Block, code_blocks
from tests.support.gateway import GatewayProcess, start_gateway

AS_OF = date(2026, 4, 30)
CODES = ("US.AAPL", "US.TSLA", "HK.00700", "HK.02800")
ANALYST_PAGES = sorted((DOCS / "analysts").glob("*.md"))
RUN = ("python", "sql")
# The vendor's example connects to OpenD's default port; here it is the test gateway's.
VENDOR_PORT = "port=11111"


@dataclass(frozen=True)
class Warehouse:
    engine: sa.Engine
    env: dict[str, str]
    gateway: GatewayProcess


def _load(env: dict[str, str]) -> None:
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        for name, value in env.items():
            patch.setenv(name, value)
        assert main(["load"]) == 0


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    watchlist = tmp_path_factory.mktemp("docs") / "watchlist.yaml"
    watchlist.write_text("codes: [" + ", ".join(CODES) + "]\n", encoding="utf-8")
    args = ["--rate", "off", "--listing-rate", "off", "--as-of", AS_OF.isoformat()]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_postgres_database())
        engine = stack.enter_context(migrated_engine(url))
        first, revising = start_gateway(args), start_gateway([*args, "--revision", "1"])
        stack.callback(first.stop)
        stack.callback(revising.stop)
        env = {
            "SHORTINTEREST_DATABASE_URL": url,
            "SHORTINTEREST_WATCHLIST": str(watchlist),
            "OPEND_RATE_LIMIT": "1000/1",
            "OPEND_LISTING_RATE_LIMIT": "1000/1",
        }
        _load({**env, **first.env()})  # every code's whole history
        _load({**env, **revising.env()})  # the weekly refresh: the newest rows revised
        yield Warehouse(engine, {**env, **first.env()}, first)


def test_tables_page_is_what_the_schema_comments_say(warehouse: Warehouse) -> None:
    with warehouse.engine.connect() as conn:
        page = schema.render(conn)
    assert stale_pages({SCHEMA_PAGE: page}) == [], "stale: run `python -m pipelines.docs_reference --database-url`"


def test_analyst_pages_have_examples_to_run() -> None:
    runnable = [b for page in ANALYST_PAGES for b in code_blocks(page) if b.language in RUN and b.marker != "skip"]
    assert {b.language for b in runnable} == set(RUN)


def _run_python(block: Block, namespace: dict[str, object], port: int) -> None:
    code = compile(block.text.replace(VENDOR_PORT, f"port={port}"), block.where, "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, namespace)


def _run_sql(block: Block, engine: sa.Engine) -> None:
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(block.text.strip().rstrip(";")).fetchall()
    except sa.exc.DBAPIError as exc:
        pytest.fail(f"{block.where}: {exc.orig}")
    assert rows or block.marker == "may be empty", f"{block.where}: the query returned no rows"


@pytest.mark.parametrize("page", ANALYST_PAGES, ids=lambda page: Path(page).stem)
def test_analyst_examples_run(page: Path, warehouse: Warehouse) -> None:
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in warehouse.env.items():
            patch.setenv(name, value)
        for block in code_blocks(page):
            if block.language == "python" and block.marker != "skip":
                _run_python(block, namespace, warehouse.gateway.port)
            elif block.language == "sql" and block.marker != "skip":
                _run_sql(block, warehouse.engine)
