"""`shortinterest demo`, then `shortinterest ui`, looked at in a real browser: the movers report with its chart.

Headless Chromium (Debian's `chromium`) is driven by Playwright through `executable_path`. Where no Chromium
is installed the test is skipped on a workstation and fails in CI, which installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import GatewayProcess

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow(seconds=30)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
UI_START_TIMEOUT = 180.0
PAGE_TIMEOUT_MS = 90_000


def chromium() -> str:
    found = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if found is None:
        message = "no Chromium found on PATH: `apt-get install chromium` (CI installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


@pytest.fixture
def demo_folder(tmp_path: Path, gateway: GatewayProcess) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder where `shortinterest demo` ran, with the environment it ran in (no DAGSTER_HOME: the default)."""
    (tmp_path / "watchlist.yaml").write_text("codes:\n  - US.AAPL\n  - HK.00700\n  - US.TSLA\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPEND_", "SHORTINTEREST_", "DAGSTER_"))}
    env = {
        **base,
        **gateway.env(),
        "OPEND_RATE_LIMIT": "1000/1",
        "SHORTINTEREST_WATCHLIST": str(tmp_path / "watchlist.yaml"),
        "PYTHONUNBUFFERED": "1",
    }
    demo = subprocess.run(cli("demo"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "movers report materialized" in demo.stdout
    yield tmp_path, env


@pytest.fixture
def ui(demo_folder: tuple[Path, dict[str, str]]) -> Iterator[tuple[str, Path]]:
    """`shortinterest ui` on a free port, from the demo's folder; the whole process group is stopped afterwards."""
    folder, env = demo_folder
    port = free_port()
    log = folder / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cli("ui", "--port", str(port)),
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + UI_START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`shortinterest ui` did not serve {url}:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url, log
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        # dagster dev's webserver and daemon are in the same session: none may outlive the test.
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False)


def test_ui_shows_the_demos_report_with_its_table_and_chart(ui: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    url, log = ui
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            # Dagster greets a new browser with a newsletter dialog over the page, whenever it is ready.
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            page.goto(f"{url}/assets/short_interest_report", wait_until="networkidle")
            page.get_by_text("[Show Markdown]").first.click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Largest changes since the previous report").wait_for()
            movers = dialog.locator("table").first
            for code in ("US.AAPL", "HK.00700", "US.TSLA"):
                assert code in movers.inner_text()
            assert "days to cover" in dialog.locator("table").nth(1).inner_text()
            chart = dialog.locator("img[src^='data:image/png;base64,']")
            assert chart.count() == 1
            width, height, shown = chart.evaluate("img => [img.naturalWidth, img.naturalHeight, img.complete]")
            assert shown and width >= 900 and height >= 600  # decoded and drawn, not a broken image
            assert chart.is_visible()
        finally:
            browser.close()
    output = log.read_text()
    assert "will not be used" not in output  # Dagster's warning about a dagster.yaml outside DAGSTER_HOME
    assert "Warning" not in output, output
