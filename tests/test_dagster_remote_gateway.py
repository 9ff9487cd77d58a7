"""Dagster runs against an encrypting gateway and one not logged in: the gateway resource's `rsa_key_file`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.config import Settings
from pipelines.orchestration.assets import short_interest_asset
from pipelines.orchestration.resources import resources_from_settings
from pipelines.warehouse import upgrade
from proto_client.security import Market
from tests.support.gateway import GatewayProcess
from tests.support.rsa_keys import make_key
from tests.test_dagster_materialize import AS_OF, FAST, expected_rows, step_failure_text, stored_rows

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

CODE = "HK.00700"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("hk_codes", [CODE])
        yield instance


def _run(
    gw: GatewayProcess, database_url: str, instance: dg.DagsterInstance, key: Path | None
) -> dg.ExecuteInProcessResult:
    settings = Settings(
        opend_host=gw.host, opend_port=gw.port, rate_limit=FAST, database_url=database_url, rsa_key_file=key
    )
    return dg.materialize(
        [short_interest_asset(Market.HK)],
        instance=instance,
        partition_key=CODE,
        resources=resources_from_settings(settings),
        raise_on_error=False,
    )


def test_the_gateway_resource_encrypts_with_its_key_file(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    key, other = make_key(tmp_path / "opend_rsa.pem"), make_key(tmp_path / "other_rsa.pem")
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--rsa-key", str(key))
    upgrade(postgres_url)

    wrong = _run(gw, postgres_url, instance, other)
    assert not wrong.success
    message = step_failure_text(wrong)
    assert "no HK code was loaded" in message and "OPEND_RSA_KEY_FILE" in message and str(other) in message

    missing = _run(gw, postgres_url, instance, tmp_path / "missing.pem")
    assert not missing.success
    assert f"no HK code was loaded: RSA key file '{tmp_path / 'missing.pem'}' does not exist" in (
        step_failure_text(missing)
    )

    result = _run(gw, postgres_url, instance, key)
    assert result.success
    assert stored_rows(postgres_url, Market.HK, CODE) == expected_rows(CODE)


def test_a_gateway_not_logged_in_stops_the_run_with_one_message(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, instance: dg.DagsterInstance
) -> None:
    gw = gateway_factory("--rate", "off", "--not-logged-in")
    upgrade(postgres_url)
    result = _run(gw, postgres_url, instance, None)
    assert not result.success
    assert "HK load stopped: OpenD at" in step_failure_text(result)
    assert "not logged in to the quote server" in step_failure_text(result)
