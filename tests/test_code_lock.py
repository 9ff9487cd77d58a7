"""The per-code crawl lock on real PostgreSQL and SQLite: one holder, a bounded wait, and honest errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines.crawl.code_lock import CodeLockTimeout, code_lock
from pipelines.warehouse import create_engine_for


def test_a_second_loader_waits_then_gives_up_naming_the_code(warehouse_engine: sa.Engine) -> None:
    waits: list[str] = []
    with code_lock(warehouse_engine, "HK.00700", timeout=5):
        with (
            pytest.raises(CodeLockTimeout, match=r"crawling HK\.00700 for more than 0 s"),
            code_lock(warehouse_engine, "HK.00700", timeout=0.3, on_wait=lambda: waits.append("waited")),
        ):
            pass
        with code_lock(warehouse_engine, "HK.00005", timeout=0.3):  # another code is free
            pass
    assert waits == ["waited"]
    with code_lock(warehouse_engine, "HK.00700", timeout=0.3):  # released with its holder
        pass


def test_a_wait_cut_short_by_the_server_is_not_taken_for_the_other_loader(pg_engine: sa.Engine) -> None:
    url = pg_engine.url.update_query_dict({"options": "-c statement_timeout=200"})
    limited = create_engine_for(url.render_as_string(hide_password=False))
    try:
        with (
            code_lock(pg_engine, "US.AAPL", timeout=5),
            pytest.raises(sa.exc.OperationalError, match="statement timeout"),
            code_lock(limited, "US.AAPL", timeout=30),
        ):
            pass
        with limited.connect() as conn:  # the pooled session lost the wait's lock_timeout
            assert conn.execute(sa.text("SHOW lock_timeout")).scalar_one() == "0"
    finally:
        limited.dispose()
