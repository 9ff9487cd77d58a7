"""Earlier revisions as modules: a revision that amends their definitions reads them there, and its downgrade
restores them, so each definition is written once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).resolve().parent / "versions"


def revision_module(filename: str) -> ModuleType:
    """The revision file `filename` of migrations/versions, loaded as a module of its own."""
    path = VERSIONS / filename
    spec = importlib.util.spec_from_file_location(f"shortinterest_revision_{path.stem}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise RuntimeError(f"revision {filename} not found in {VERSIONS}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
