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


@contextmanager
def futu_encrypting(futu: Any, key: Path) -> Iterator[None]:
    """futu-api switched to encrypted links with `key`; its process-wide settings restored afterwards."""
    config, rsa = futu.SysConfig, futu.common.sys_config.RsaCrypt
    saved = (config.IS_PROTO_ENCRYPT, config.INIT_RSA_FILE, config.RSA_OBJ, rsa.CHIPPER)
    config.enable_proto_encrypt(True)
    config.set_init_rsa_file(str(key))
    rsa.CHIPPER = None  # futu-api caches the cipher of the first key it read
    try:
        yield
    finally:
        config.IS_PROTO_ENCRYPT, config.INIT_RSA_FILE, config.RSA_OBJ, rsa.CHIPPER = saved
