"""Where an alert points in the Dagster UI (SHORTINTEREST_UI_URL); no link when the address is not set."""

from __future__ import annotations

import dagster as dg


def run_link(ui_url: str, run_id: str) -> str | None:
    return f"{ui_url}/runs/{run_id}" if ui_url else None


def asset_link(ui_url: str, key: dg.AssetKey, *, checks: bool = False) -> str | None:
    if not ui_url:
        return None
    return f"{ui_url}/assets/{'/'.join(key.path)}" + ("?view=checks" if checks else "")


def automation_link(ui_url: str) -> str | None:
    return f"{ui_url}/automation" if ui_url else None
