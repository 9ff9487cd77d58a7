"""Regenerate `proto_client/pb/*_pb2.py` from the `.proto` files.

The generated modules are committed so a plain install needs no protoc; a test regenerates them into a
scratch folder and fails if the committed copies are stale.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PB_DIR = Path(__file__).with_name("pb")
ROOT = PB_DIR.parent.parent


def generate(out_dir: Path) -> list[Path]:
    """Compile every .proto in pb/ into out_dir (mirroring the package path); return the files written."""
    from grpc_tools import protoc  # dev dependency: imported only when regenerating

    protos = sorted(p.relative_to(ROOT).as_posix() for p in PB_DIR.glob("*.proto"))
    args = ["protoc", f"-I{ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", *protos]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {protos}")
    return sorted((out_dir / "proto_client" / "pb").glob("*_pb2.py*"))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copyfile(path, PB_DIR / path.name)
            print(f"wrote {PB_DIR / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
