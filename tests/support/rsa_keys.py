"""RSA key files for encrypted-link tests, made the way docs/operators/encryption.md tells users to make them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_key(path: Path, bits: int = 1024) -> Path:
    """`openssl genrsa -traditional -out PATH 1024`, readable by its owner only."""
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(path), str(bits)], check=True, capture_output=True)
    path.chmod(0o600)
    return path
