"""The official futu-api client, imported so it leaves no trace: its log goes under a scratch HOME (it writes
there at import) and its background threads are daemons."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def official_futu(home: Path) -> Iterator[Any]:
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        module = importlib.import_module("futu")
        module.SysConfig.set_all_thread_daemon(True)
        module.SysConfig.enable_console_log(False)
        yield module
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved
