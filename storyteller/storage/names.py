"""Names of campaigns and checkpoints: safe file names that never leave their folder."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

from storyteller.errors import SaveError

MAX_NAME_LENGTH = 64
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{port}{i}" for port in ("com", "lpt") for i in range(10)}
_NAME_PATTERN = re.compile(r"^[\w][\w .-]*$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def validate_name(name: str, kind: str = "campaign") -> str:
    """Return the name if it is a safe file or folder name, else raise SaveError."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    reason = None
    if not cleaned:
        reason = "it is empty"
    elif len(cleaned) > MAX_NAME_LENGTH:
        reason = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif not _NAME_PATTERN.match(cleaned) or cleaned.endswith((".", " ")):
        reason = "it may only hold letters, digits, spaces, '-', '_' and inner '.'"
    elif cleaned.split(".")[0].strip().lower() in _WINDOWS_RESERVED:
        reason = "it is a reserved device name"
    if reason:
        raise SaveError(f"Invalid {kind} name {name!r}: {reason}; "
                        "pick a name like 'my-quest'.")
    return cleaned


def inside(folder: Path, name: str, kind: str, suffix: str = "") -> Path:
    """folder/<name><suffix>, guaranteed to be directly inside folder."""
    folder = Path(folder).resolve()
    path = folder / (validate_name(name, kind) + suffix)
    if path.parent != folder:
        raise SaveError(f"Invalid {kind} name {name!r}: it must stay inside {folder}.")
    return path


def campaign_path(saves_dir: Path, name: str) -> Path:
    """The folder of a campaign, guaranteed to be directly inside saves_dir."""
    return inside(saves_dir, name, "campaign")


def unused_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/<stem><suffix>, or with -2, -3... after the stem if that exists already."""
    candidate, count = folder / f"{stem}{suffix}", 1
    while candidate.exists():
        count += 1
        candidate = folder / f"{stem}-{count}{suffix}"
    return candidate
