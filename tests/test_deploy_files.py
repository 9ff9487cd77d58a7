"""deploy/: the production instance configuration stays in step with the top-level one, the service files supply
every variable it reads, the units are hardened (and pass systemd's own checks), the webservers listen on the
loopback behind the proxy, and the services log in as a loader."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
PG_VARIABLES = {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}

UNITS = ("shortinterest-webserver.service", "shortinterest-webserver-readonly.service", "shortinterest-daemon.service")
VENV_BIN = "/opt/shortinterest/.venv/bin/"
ENV_FILE = "/etc/shortinterest/shortinterest.env"
# Settings every unit must carry, as systemd reads them (the last assignment of a key wins).
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "StateDirectory": "shortinterest",  # /var/lib/shortinterest, the instance directory: the one writable place
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
}


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
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "Environment=DAGSTER_PG_PORT=5432" in text, unit
        assert "EnvironmentFile=/etc/shortinterest/shortinterest.env" in text, unit
        assert " -w workspace.yaml" in text, unit


def _service_settings(unit: str) -> dict[str, str]:
    """The unit's [Service] section as key -> last value."""
    settings: dict[str, str] = {}
    section = ""
    for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def test_units_are_hardened_alike_and_check_the_environment_file_first() -> None:
    settings = {unit: _service_settings(unit) for unit in UNITS}
    for unit, service in settings.items():
        assert {key: service.get(key) for key in HARDENING} == HARDENING, unit
        assert service["ExecStartPre"] == f"{VENV_BIN}shortinterest check-env {ENV_FILE}", unit
        assert service["EnvironmentFile"] == ENV_FILE, unit
    hardening = [{k: v for k, v in s.items() if not k.startswith(("Exec", "Description"))} for s in settings.values()]
    daemon_only = {"KillMode"}
    assert [{k: v for k, v in h.items() if k not in daemon_only} for h in hardening[1:]] == [hardening[0]] * 2


def test_webservers_listen_on_the_loopback_only_the_second_read_only() -> None:
    full = _service_settings("shortinterest-webserver.service")["ExecStart"]
    read_only = _service_settings("shortinterest-webserver-readonly.service")["ExecStart"]
    assert full == f"{VENV_BIN}dagster-webserver -w workspace.yaml -h 127.0.0.1 -p 3000"
    assert read_only == f"{VENV_BIN}dagster-webserver -w workspace.yaml -h 127.0.0.1 -p 3001 --read-only"
    site = (DEPLOY / "nginx" / "shortinterest.conf").read_text()
    assert "proxy_pass http://127.0.0.1:3000;" in site and "proxy_pass http://127.0.0.1:3001;" in site
    assert "0.0.0.0" not in "".join((DEPLOY / "systemd" / unit).read_text() for unit in UNITS)


def test_units_pass_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    """systemd checks the programs a unit starts exist, so the units are checked pointing at this venv's."""
    analyze = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    assert Path(analyze).exists(), "systemd-analyze is missing: `apt-get install -y systemd` (.ci/run installs it)"
    venv_bin = f"{Path(sys.executable).parent}/"
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        assert text.count(VENV_BIN) == 2, unit  # ExecStartPre and ExecStart
        (tmp_path / unit).write_text(text.replace(VENV_BIN, venv_bin))
    units = [str(tmp_path / unit) for unit in UNITS]
    verified = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, ""), verified.stdout + verified.stderr
    for unit in units:
        # systemd's own exposure level, 0 (locked down) to 10, "OK" up to 4.9; these units are at 1.5. The
        # threshold is given in tenths.
        security = subprocess.run(
            [analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", unit],
            capture_output=True,
            text=True,
            check=False,
        )
        assert security.returncode == 0, security.stdout[-3000:] + security.stderr


def test_services_connect_as_a_loader_login() -> None:
    env_file = (DEPLOY / "shortinterest.env").read_text()
    url = re.search(r"^SHORTINTEREST_DATABASE_URL=(.*)$", env_file, flags=re.MULTILINE)
    assert url is not None
    login = make_url(url.group(1)).username
    assert login == "shortinterest_load", "the services use a member of shortinterest_loader, never the owner"
    assert "shortinterest migrate" in env_file
