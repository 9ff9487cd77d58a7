"""The code location loads, validates with Dagster's own CLI, and has the shape the schedules and UI rely on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.code_pointer import CodePointer

from pipelines.config import ConfigError
from pipelines.crawl.watchlist import WatchlistError
from pipelines.definitions import build_definitions, defs
from pipelines.orchestration.resources import GatewayResource, RateLimitConfig, WarehouseResource, WatchlistResource

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
VARIABLES = (
    "OPEND_HOST",
    "OPEND_PORT",
    "OPEND_RATE_LIMIT",
    "OPEND_REPLY_TIMEOUT",
    "OPEND_RSA_KEY_FILE",
    "SHORTINTEREST_DATABASE_URL",
    "SHORTINTEREST_WATCHLIST",
)


@pytest.mark.slow
def test_dagster_cli_validates_the_workspace(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation successful for code location shortinterest" in output


def test_the_code_location_loads_without_the_charting_and_frame_libraries() -> None:
    """Every code server and every run's process loads the location; the report run alone draws a chart."""
    heavy = ("matplotlib", "numpy", "pandas", "PIL")
    probe = f"import sys, pipelines.definitions; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_two_assets_partitioned_by_their_markets_codes() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"universe", "us_short_interest", "hk_short_interest", "short_interest_report"}
    for market in ("us", "hk"):
        asset = defs.resolve_assets_def(f"{market}_short_interest")
        assert isinstance(asset.partitions_def, dg.DynamicPartitionsDefinition)
        assert asset.partitions_def.name == f"{market}_codes"
        assert asset.group_names_by_key[asset.key] == "short_interest"
        policy = asset.backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None  # one run for a whole backfill
        schema = asset.metadata_by_key[asset.key]["dagster/column_schema"]
        assert "trade_date" in [column.name for column in schema.columns]
        checks = {key.name for key in graph.asset_check_keys if key.asset_key == asset.key}
        assert checks == {"cadence_gaps", "values_in_range", "trade_date_matches_timestamp", "freshness"}
        assert asset.can_subset  # checks can run alone, and the load without them
        assert graph.get(asset.key).parent_keys == {dg.AssetKey("universe")}


def test_jobs_schedules_and_sensor() -> None:
    jobs = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    assert jobs == {
        "us_short_interest_refresh",
        "us_short_interest_full_refresh",
        "hk_short_interest_refresh",
        "hk_short_interest_full_refresh",
        "short_interest_report_job",
        "universe_refresh",
    }
    full = defs.resolve_job_def("hk_short_interest_full_refresh")
    assert full.get_run_config_for_partition_key("HK.00700") == {
        "ops": {"hk_short_interest": {"config": {"full": True}}}
    }
    assert defs.resolve_job_def("hk_short_interest_refresh").tags["shortinterest/gateway"] == "opend"
    assert {s.name for s in defs.schedules or []} == {"hk_weekly_refresh", "us_weekly_refresh", "universe_daily"}
    for name in ("watchlist_partitions", "report_after_loads"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_resources_read_the_documented_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    defaults = build_definitions().resources
    assert defaults["gateway"] == GatewayResource(
        host="127.0.0.1", port=11111, rate_limit=RateLimitConfig(requests=30, seconds=30.0), reply_timeout=15.0
    )
    assert defaults["warehouse"] == WarehouseResource(database_url="sqlite:///.shortinterest/warehouse.db")

    monkeypatch.setenv("OPEND_HOST", "opend.internal")
    monkeypatch.setenv("OPEND_PORT", "12000")
    monkeypatch.setenv("OPEND_RATE_LIMIT", "20/30")
    monkeypatch.setenv("OPEND_REPLY_TIMEOUT", "5")
    monkeypatch.setenv("OPEND_RSA_KEY_FILE", "/etc/shortinterest/opend_rsa.pem")
    monkeypatch.setenv("SHORTINTEREST_DATABASE_URL", "postgresql://etl@db/warehouse")
    own_watchlist = tmp_path / "watchlist.yaml"
    own_watchlist.write_text("codes: [US.AAPL]\n")
    monkeypatch.setenv("SHORTINTEREST_WATCHLIST", str(own_watchlist))
    configured = build_definitions().resources
    gateway = configured["gateway"]
    assert isinstance(gateway, GatewayResource)
    # EnvVar keeps the value out of the definitions and shows the variable's name in the UI.
    assert (gateway.host, gateway.port) == (dg.EnvVar("OPEND_HOST"), dg.EnvVar.int("OPEND_PORT"))
    # Typed values are parsed when the definitions load.
    assert (gateway.rate_limit, gateway.reply_timeout) == (RateLimitConfig(requests=20, seconds=30.0), 5.0)
    assert gateway.rsa_key_file == dg.EnvVar("OPEND_RSA_KEY_FILE")
    assert isinstance(configured["warehouse"], WarehouseResource)
    assert configured["warehouse"].database_url == dg.EnvVar("SHORTINTEREST_DATABASE_URL")
    assert isinstance(configured["watchlist"], WatchlistResource)
    assert configured["watchlist"].path == dg.EnvVar("SHORTINTEREST_WATCHLIST")


@pytest.mark.parametrize(("name", "value"), [("OPEND_RATE_LIMIT", "fast"), ("OPEND_REPLY_TIMEOUT", "soon")])
def test_malformed_variable_fails_the_code_location_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name}='{value}'"):
        build_definitions()


def load_code_location() -> object:
    """`defs` as Dagster's code server loads it: workspace.yaml's module and attribute, imported afresh."""
    (entry,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    target = entry["python_module"]
    pointer = CodePointer.from_module(
        target["module_name"], target["attribute"], str(REPO / target["working_directory"])
    )
    return pointer.load_target()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("codes: [HK.00700]\nmarket: [HK]\n", "unknown key 'market'"),
        ("codes: [HK.00700]\nmarkets: [HK, JP]\n", "markets entry 2 'JP': unknown market; only HK and US"),
        ("plates: [HSI Constituent]\n", "plates entry 1 'HSI Constituent': no market prefix"),
        ("codes: [HK.00700, XX.BAD]\n", "entry 2 'XX.BAD'"),
    ],
    ids=["unknown-key", "market-JP", "plate-without-prefix", "bad-code"],
)
def test_malformed_watchlist_fails_the_code_location_naming_the_file_and_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, named: str
) -> None:
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(text)
    monkeypatch.setenv("SHORTINTEREST_WATCHLIST", str(watchlist))
    monkeypatch.delitem(sys.modules, "pipelines.definitions")  # restored after the test
    with pytest.raises(WatchlistError) as raised:
        load_code_location()
    assert str(raised.value).startswith(f"watchlist {watchlist}: ")
    assert named in str(raised.value)

    watchlist.write_text("codes: [HK.00700]\nmarkets: [US]\nplates: [HK.HSI Constituent]\n")
    assert isinstance(load_code_location(), dg.Definitions)  # the same load, once the entry is fixed
