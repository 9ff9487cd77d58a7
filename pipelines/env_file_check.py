"""`shortinterest check-env FILE`: refuse to start a service whose environment file others can read or change.

The file holds the passwords of the warehouse's and Dagster's logins. systemd reads it as root whatever its
mode, so nothing would notice a copy every user can read; the units run this check first (`ExecStartPre`), and
a refused file fails the start with one line in the journal naming the file and its mode. Others or the group
able to write it could set PYTHONPATH and run their code as the service, so that is refused too.
"""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

from pipelines.failures import fail

COMMAND = "shortinterest check-env"
# Read or write by anyone but the owner and the group, or write by the group.
_FORBIDDEN_BITS = stat.S_IRWXO | stat.S_IWGRP


class EnvFileError(Exception):
    """The environment file is missing, not a file, or open to people it must not be; the message says which."""


def check_env_file(path: Path) -> None:
    """Raise EnvFileError unless `path` is a regular file only its owner (and its group, to read) can access."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise EnvFileError(f"environment file {path} does not exist") from None
    except OSError as exc:
        raise EnvFileError(f"environment file {path} cannot be examined: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise EnvFileError(f"environment file {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & _FORBIDDEN_BITS:
        who = "other users can read or change it" if mode & stat.S_IRWXO else "its group can change it"
        raise EnvFileError(
            f"environment file {path} has mode {mode:04o}: {who}, and it holds passwords; "
            f"restrict it with chmod 640 (group of the service's user) or chmod 600"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the environment file, e.g. /etc/shortinterest/shortinterest.env")
    parser.epilog = "Prints nothing and exits 0 when the file is fine; the systemd units run it before starting."


def run(args: argparse.Namespace) -> int:
    try:
        check_env_file(args.file)
    except EnvFileError as exc:
        return fail(COMMAND, str(exc), 1)
    return 0
