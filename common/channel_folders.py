"""The on-disk layout of the channels a node (peer or orderer) has joined.

Under the node's storage folder, `channels/<name>/` holds one joined channel. A join
writes the new channel into `channels/.joining-<name>/` and renames that folder once
its content is durable, so a crash mid-join leaves no half-joined channel; at start
`joined_channel_folders` removes such leftovers and lists the channels to reopen.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from common.blockstore import fsync_directory

__all__ = [
    "CHANNELS_FOLDER",
    "create_channel_folder",
    "is_valid_channel_name",
    "joined_channel_folders",
]

_LOG = logging.getLogger(__name__)

CHANNELS_FOLDER = "channels"
_JOINING_PREFIX = ".joining-"
_CHANNEL_NAME = re.compile(r"[a-z][a-z0-9.-]*")
_CHANNEL_NAME_MAX = 249


def is_valid_channel_name(name: str) -> bool:
    """Fabric's rule: lower-case letters, digits, '.' and '-', a letter first, < 250."""
    return len(name) <= _CHANNEL_NAME_MAX and bool(_CHANNEL_NAME.fullmatch(name))


def joined_channel_folders(folder: Path) -> list[Path]:
    """The joined channels' folders in `folder`, sorted, once unfinished joins are gone.

    Creates `folder` when it does not exist. Blocks: call it from a worker thread.
    """
    folder.mkdir(parents=True, exist_ok=True)
    joined = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(_JOINING_PREFIX):
            _LOG.warning("removing an unfinished join folder=%s", path)
            shutil.rmtree(path)
        elif path.is_dir():
            joined.append(path)
    return joined


def create_channel_folder(
    folder: Path, name: str, write: Callable[[Path], None]
) -> Path:
    """Make `folder/<name>` with `write`, which fills the (absent) folder it is given.

    `write` works on a staging folder; the channel's folder appears, by rename, only
    once `write` has returned. Returns the channel's folder. Blocks: call it from a
    worker thread.
    """
    staging = folder / f"{_JOINING_PREFIX}{name}"
    if staging.exists():
        shutil.rmtree(staging)
    write(staging)
    joined = folder / name
    staging.rename(joined)
    fsync_directory(folder)  # the rename itself survives a power loss
    return joined
