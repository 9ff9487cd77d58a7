"""deploy/: the production instance configuration stays in step with the top-level one, and the service
files supply every variable it reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
PG_VARIABLES = {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _env_variables(node: object) -> set[str]:
    """Every `{env: NAME}` in a parsed dagster.yaml."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {str(node["env"])}
        return {name for value in node.values() for name in _env_variables(value)}
    if isinstance(node, list):
        return {name for value in node for name in _env_variables(value)}
    return set()


def test_production_config_is_the_top_level_one_on_postgres_storage() -> None:
    production, development = _load(DEPLOY / "dagster.yaml"), _load(REPO_ROOT / "dagster.yaml")
    assert "postgres" in production.pop("storage")
    development.pop("storage", None)
    assert production == development, "deploy/dagster.yaml and dagster.yaml differ outside `storage`"


def test_storage_reads_the_documented_variables() -> None:
    storage = _load(DEPLOY / "dagster.yaml")["storage"]["postgres"]["postgres_db"]
    assert _env_variables(storage) == PG_VARIABLES
    assert storage["scheme"] == "postgresql+psycopg2"


def test_both_services_get_every_variable_and_a_default_port() -> None:
    env_file = (DEPLOY / "shortinterest.env").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", env_file, flags=re.MULTILINE))
    assert PG_VARIABLES | {"DAGSTER_HOME", "SHORTINTEREST_DATABASE_URL"} <= defined
    for unit in ("shortinterest-webserver.service", "shortinterest-daemon.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "Environment=DAGSTER_PG_PORT=5432" in text, unit
        assert "EnvironmentFile=/etc/shortinterest/shortinterest.env" in text, unit
        assert " -w workspace.yaml" in text, unit
