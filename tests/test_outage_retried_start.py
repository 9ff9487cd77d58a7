"""A retried run meets its gateway mid-restart: it waits, instead of blaming the encryption settings.

An OpenD coming up accepts connections and closes them before InitConnect completes, which is also what an
OpenD with an RSA key does to a client without one. A first run cannot tell the two apart and names the
key; a retried run (`wait_at_start`) knows its settings connected before, so it waits the restart out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pipelines.config import Settings
from pipelines.crawl.crawler import CodeResult, open_crawler
from pipelines.warehouse import upgrade
from proto_client.errors import EncryptionError
from tests.support.gateway import GatewayProcess, accepting_then_closing

CODE = "US.AAPL"


def test_a_first_run_names_the_encryption_settings(sqlite_url: str, unused_port: int) -> None:
    upgrade(sqlite_url)
    settings = Settings(opend_port=unused_port, database_url=sqlite_url, outage_timeout=60)
    with (
        accepting_then_closing("127.0.0.1", unused_port),
        pytest.raises(EncryptionError, match="OPEND_RSA_KEY_FILE"),
        open_crawler(settings),
    ):
        pass


def test_a_retried_run_waits_out_a_gateway_that_accepts_then_closes(
    gateway_factory: Callable[..., GatewayProcess], sqlite_url: str, unused_port: int
) -> None:
    upgrade(sqlite_url)
    settings = Settings(opend_port=unused_port, database_url=sqlite_url, outage_timeout=60)
    results: list[CodeResult] = []
    failures: list[BaseException] = []

    def retried_run() -> None:
        try:
            with open_crawler(settings, wait_at_start=True) as crawler:
                results.append(crawler.crawl_code(CODE))
        except BaseException as exc:
            failures.append(exc)

    run = threading.Thread(target=retried_run)
    with accepting_then_closing("127.0.0.1", unused_port):
        run.start()
        time.sleep(2)
        assert run.is_alive(), f"the retried run did not wait: {failures}"
    gateway_factory("--port", str(unused_port))
    run.join(timeout=60)

    assert not run.is_alive() and not failures, failures
    assert len(results) == 1 and results[0].ok and results[0].inserted > 0, results
