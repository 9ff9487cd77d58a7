"""The Dagster instance a person's own machine uses: where `shortinterest demo` records its runs and what
`shortinterest ui` serves, so the UI shows the demo's materializations, checks and report.

It is `$DAGSTER_HOME` when set, else `.shortinterest/dagster_home` beside the default warehouse. A new
home gets the project's `dagster.yaml` (run queue, pools, telemetry off); an existing one is left as it is.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pipelines

DEFAULT_HOME = Path(".shortinterest") / "dagster_home"
PROJECT_ROOT = Path(pipelines.__file__).resolve().parent.parent
PROJECT_INSTANCE_YAML = PROJECT_ROOT / "dagster.yaml"
PROJECT_WORKSPACE_YAML = PROJECT_ROOT / "workspace.yaml"


def dagster_home(environ: Mapping[str, str] | None = None) -> Path:
    """The instance directory, absolute, created with the project's dagster.yaml when new."""
    env = os.environ if environ is None else environ
    home = Path(env.get("DAGSTER_HOME") or DEFAULT_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists() and PROJECT_INSTANCE_YAML.is_file():
        shutil.copyfile(PROJECT_INSTANCE_YAML, target)
    return home
