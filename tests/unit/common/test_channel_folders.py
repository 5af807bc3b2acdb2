"""A node's joined-channel folders: a join appears only once written; leftovers go at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.channel_folders import (
    create_channel_folder,
    is_valid_channel_name,
    joined_channel_folders,
)


def _write_ledger(staging: Path) -> None:
    staging.mkdir()
    (staging / "ledger").write_bytes(b"genesis")


def test_a_created_channel_is_listed_with_what_was_written(tmp_path: Path) -> None:
    folder = tmp_path / "channels"
    assert joined_channel_folders(folder) == []  # creates the folder
    joined = create_channel_folder(folder, "medical-records", _write_ledger)
    assert joined == folder / "medical-records"
    assert (joined / "ledger").read_bytes() == b"genesis"
    assert joined_channel_folders(folder) == [joined]


def test_an_unfinished_join_is_removed_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "channels"
    folder.mkdir()
    create_channel_folder(folder, "b-channel", _write_ledger)
    crashed = folder / ".joining-a-channel"
    _write_ledger(crashed)  # a join that crashed before its rename
    assert joined_channel_folders(folder) == [folder / "b-channel"]
    assert not crashed.exists()


def test_a_failed_write_leaves_no_channel_and_a_retry_succeeds(tmp_path: Path) -> None:
    folder = tmp_path / "channels"
    folder.mkdir()

    def fail(staging: Path) -> None:
        _write_ledger(staging)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        create_channel_folder(folder, "ch", fail)
    assert not (folder / "ch").exists()
    joined = create_channel_folder(
        folder, "ch", _write_ledger
    )  # staging left over: replaced
    assert joined_channel_folders(folder) == [joined]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("medical-records", True),
        ("a.b-1", True),
        ("a" * 249, True),
        ("a" * 250, False),
        ("Upper", False),
        ("1abc", False),
        ("", False),
        ("under_score", False),
    ],
)
def test_channel_names_follow_fabrics_rule(name: str, valid: bool) -> None:
    assert is_valid_channel_name(name) is valid
