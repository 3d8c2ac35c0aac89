"""Listing and deleting the campaigns of a saves folder, without changing any."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.lock import hold_campaign, open_elsewhere
from storyteller.storage.names import campaign_path
from storyteller.storage.schema import CAMPAIGN_FILE, read_meta
from storyteller.storage.transcript import TRANSCRIPT_FILE, read_transcript


@dataclass(frozen=True)
class CampaignInfo:
    name: str
    world: str
    turns: int
    last_played: str
    size_bytes: int
    problem: str = ""  # why it cannot be loaded, if it cannot
    open_elsewhere: str | None = None  # who holds it open ("pid N on HOST"), if anyone


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def list_campaigns(saves_dir: Path) -> list[CampaignInfo]:
    """Every campaign folder in saves_dir, most recently played first, read without
    changing anything. One that cannot be read is listed with its problem, so the player
    can see it and delete it."""
    saves_dir = Path(saves_dir)
    if not saves_dir.is_dir():
        return []
    found = []
    for folder in sorted(saves_dir.iterdir()):
        if not (folder / CAMPAIGN_FILE).is_file():
            continue
        try:
            meta = read_meta(folder / CAMPAIGN_FILE)
            turns = len(read_transcript(folder / TRANSCRIPT_FILE))
            found.append(CampaignInfo(folder.name, str(meta.get("world", "?")), turns,
                                      str(meta.get("updated") or meta.get("created", "")),
                                      folder_size(folder), open_elsewhere=open_elsewhere(folder)))
        except SaveError as error:
            found.append(CampaignInfo(folder.name, "?", 0, "", folder_size(folder),
                                      problem=str(error), open_elsewhere=open_elsewhere(folder)))
    return sorted(found, key=lambda info: info.last_played, reverse=True)


def delete_campaign(saves_dir: Path, name: str) -> Path:
    """Remove a campaign folder; only a real campaign folder directly in saves_dir, and
    only while no storyteller has it open (CampaignBusyError)."""
    path = campaign_path(saves_dir, name)
    if path.is_symlink():
        raise SaveError(f"{path} is a link, not a campaign folder; remove it yourself.")
    if not (path / CAMPAIGN_FILE).is_file():
        raise SaveError(f"No campaign named {name!r} in {saves_dir}.")
    with hold_campaign(path):
        try:
            shutil.rmtree(path)
        except OSError as error:
            raise SaveError(f"Cannot delete {path}: {error.strerror}; check that the saves "
                                "directory is writable.") from None
    return path


