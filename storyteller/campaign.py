"""Campaigns on disk: saves/<name>/ holds campaign.json, world.toml and transcript.jsonl.

The transcript is append-only and fsynced after every completed turn, so a turn that
finished is never lost. /undo appends an undo record instead of rewriting the file.
A torn last line (a crash mid-write) belonged to a turn that never completed and is
ignored. JSON only, never pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 1
CAMPAIGN_FILE = "campaign.json"
TRANSCRIPT_FILE = "transcript.jsonl"
WORLD_FILE = "world.toml"
MAX_NAME_LENGTH = 64
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{port}{i}" for port in ("com", "lpt") for i in range(10)}
_NAME_PATTERN = re.compile(r"^[\w][\w .-]*$")


class CampaignError(Exception):
    """A campaign problem the player can fix; the message is one line and says how."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def validate_name(name: str) -> str:
    """Return the name if it is a safe folder name inside saves/, else raise CampaignError."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    reason = None
    if not cleaned:
        reason = "it is empty"
    elif len(cleaned) > MAX_NAME_LENGTH:
        reason = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif not _NAME_PATTERN.match(cleaned) or cleaned.endswith((".", " ")):
        reason = "it may only hold letters, digits, spaces, '-', '_' and inner '.'"
    elif cleaned.split(".")[0].lower() in _WINDOWS_RESERVED:
        reason = "it is a reserved device name"
    if reason:
        raise CampaignError(f"Invalid campaign name {name!r}: {reason}; "
                            "pick a name like 'my-quest'.")
    return cleaned


@dataclass
class Turn:
    number: int
    input: str
    output: str
    model: str = ""
    created: str = field(default_factory=now_iso)

    def to_record(self) -> dict:
        return {"type": "turn", **asdict(self)}

    @classmethod
    def from_record(cls, record: dict) -> Turn:
        return cls(
            number=int(record["number"]),
            input=str(record["input"]),
            output=str(record["output"]),
            model=str(record.get("model", "")),
            created=str(record.get("created", "")),
        )


def write_atomic(path: Path, text: str) -> None:
    """Write text so that the file is either the old version or the new one, never torn."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """The complete JSON records of an append-only .jsonl file, in order ([] if absent)."""
    if not path.exists():
        return []
    records = []
    # The last chunk after the final newline, if any, is a write that a crash
    # interrupted: the record it belonged to never completed, so it is skipped.
    complete = path.read_bytes().split(b"\n")[:-1]
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as error:
            raise CampaignError(_unreadable(path, number, error)) from None
        records.append(record)
    return records


def append_jsonl(path: Path, record: dict) -> None:
    """Append one record as a line, flushed and fsynced before returning. A torn last
    line (from a crash) is cut first, so the record starts on its own line."""
    line = json.dumps(record, ensure_ascii=False) + "\n"
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as file:
                file.truncate(data.rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as file:
        file.write(line)
        file.flush()
        os.fsync(file.fileno())


def _unreadable(path: Path, number: int, error: Exception) -> str:
    return (f"{path} line {number} is unreadable ({error.__class__.__name__}); "
            "restore it from a backup or remove that line.")


def read_transcript(path: Path) -> list[Turn]:
    """Replay the transcript's turn and undo records into the list of live turns."""
    turns: list[Turn] = []
    for number, record in enumerate(read_jsonl(path), start=1):
        try:
            if record.get("type") == "undo":
                if turns:
                    turns.pop()
            else:
                turns.append(Turn.from_record(record))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CampaignError(_unreadable(path, number, error)) from None
    return turns


class Campaign:
    """One campaign folder: metadata, the world it was started with, and its turns."""

    def __init__(self, path: Path, meta: dict, turns: list[Turn]):
        self.path = path
        self.meta = meta
        self.turns = turns

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def world_text(self) -> str:
        return (self.path / WORLD_FILE).read_text(encoding="utf-8")

    @property
    def next_turn_number(self) -> int:
        return self.turns[-1].number + 1 if self.turns else 1

    @classmethod
    def create(cls, saves_dir: Path, name: str, world_name: str, world_text: str,
               model: str) -> Campaign:
        path = campaign_path(saves_dir, name)
        try:
            path.mkdir(parents=True, exist_ok=True)
            write_atomic(path / WORLD_FILE, world_text)
            meta = {
                "schema_version": SCHEMA_VERSION,
                "name": validate_name(name),
                "world": world_name,
                "model": model,
                "created": now_iso(),
                "updated": now_iso(),
                "turns": 0,
            }
            campaign = cls(path, meta, [])
            campaign._write_meta()
        except OSError as error:
            raise CampaignError(f"Cannot create campaign in {path}: {error.strerror}; "
                                "check that the saves directory is writable.") from None
        return campaign

    @classmethod
    def load(cls, saves_dir: Path, name: str) -> Campaign:
        path = campaign_path(saves_dir, name)
        meta_path = path / CAMPAIGN_FILE
        if not meta_path.exists():
            raise CampaignError(f"No campaign named {name!r} in {saves_dir}.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise CampaignError(f"{meta_path} is corrupt ({error.__class__.__name__}); it was "
                                "left untouched: restore it from a backup.") from None
        if not isinstance(meta, dict) or "name" not in meta:
            raise CampaignError(f"{meta_path} is not a campaign file; it was left untouched.")
        if meta.get("schema_version", 0) > SCHEMA_VERSION:
            raise CampaignError(f"{meta_path} was written by a newer storyteller; "
                                "upgrade storyteller to load it.")
        return cls(path, meta, read_transcript(path / TRANSCRIPT_FILE))

    def append_turn(self, turn: Turn) -> None:
        """Record a completed turn durably (flushed and fsynced) before returning."""
        self._append_record(turn.to_record())
        self.turns.append(turn)
        self._touch()

    def undo(self) -> Turn | None:
        """Take back the last turn; returns it, or None when there is nothing to undo."""
        if not self.turns:
            return None
        self._append_record({"type": "undo", "turn": self.turns[-1].number, "at": now_iso()})
        turn = self.turns.pop()
        self._touch()
        return turn

    def _append_record(self, record: dict) -> None:
        transcript = self.path / TRANSCRIPT_FILE
        try:
            append_jsonl(transcript, record)
        except OSError as error:
            raise CampaignError(f"Cannot write {transcript}: {error.strerror}; the turn was "
                                "not saved, free some disk space and try again.") from None

    def _touch(self) -> None:
        self.meta["updated"] = now_iso()
        self.meta["turns"] = len(self.turns)
        # The metadata is a convenience: the transcript already holds the turn.
        with contextlib.suppress(OSError):
            self._write_meta()

    def _write_meta(self) -> None:
        write_atomic(self.path / CAMPAIGN_FILE, json.dumps(self.meta, indent=2, ensure_ascii=False))


def campaign_path(saves_dir: Path, name: str) -> Path:
    """The folder of a campaign, guaranteed to be directly inside saves_dir."""
    folder = Path(saves_dir).resolve() / validate_name(name)
    if folder.parent != Path(saves_dir).resolve():
        raise CampaignError(f"Invalid campaign name {name!r}: it must stay inside {saves_dir}.")
    return folder
