"""`shortinterest check-env`, which the units run before starting: an environment file others can read (it holds
passwords) or change stops the start with one line naming the file and its mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crawl import run_cli

COMMAND = "shortinterest check-env"


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_a_file_only_its_owner_and_group_read_passes_silently(tmp_path: Path, mode: int) -> None:
    env_file = tmp_path / "shortinterest.env"
    env_file.write_text("SHORTINTEREST_DATABASE_URL=postgresql+psycopg://load:secret@db/warehouse\n")
    env_file.chmod(mode)
    checked = run_cli("check-env", str(env_file), env={})
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        (0o644, "other users can read or change it"),
        (0o604, "other users can read or change it"),
        (0o602, "other users can read or change it"),
        (0o660, "its group can change it"),
    ],
)
def test_a_file_others_can_read_or_change_is_refused_naming_it_and_its_mode(
    tmp_path: Path, mode: int, why: str
) -> None:
    env_file = tmp_path / "shortinterest.env"
    env_file.write_text("DAGSTER_PG_PASSWORD=secret\n")
    env_file.chmod(mode)
    checked = run_cli("check-env", str(env_file), env={})
    assert checked.returncode == 1
    assert checked.stderr == (
        f"{COMMAND}: environment file {env_file} has mode {mode:04o}: {why}, and it holds passwords; "
        "restrict it with chmod 640 (group of the service's user) or chmod 600\n"
    )
    assert "secret" not in checked.stdout + checked.stderr


def test_a_missing_file_or_a_directory_is_refused(tmp_path: Path) -> None:
    missing = run_cli("check-env", str(tmp_path / "nope.env"), env={})
    assert (missing.returncode, missing.stderr) == (
        1,
        f"{COMMAND}: environment file {tmp_path / 'nope.env'} does not exist\n",
    )
    directory = run_cli("check-env", str(tmp_path), env={})
    assert (directory.returncode, directory.stderr) == (
        1,
        f"{COMMAND}: environment file {tmp_path} is not a regular file\n",
    )
