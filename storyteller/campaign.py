"""Campaigns on disk. saves/<name>/ holds:

    campaign.json     metadata (schema below), rewritten atomically
    world.toml        the world the campaign started in
    transcript.jsonl  one record a line, append-only, fsynced when a turn completes
    checkpoints/      /save NAME: copies of the transcript, restored by /load NAME
    memory/           derived index, rebuildable from the transcript
    logs/             content logs (storyteller.engine.content_log)
    exports/          /export and `storyteller export` (storyteller.export)

A turn that finished is never lost: its record is fsynced before the turn returns.
/undo and /retry append records instead of rewriting the file. A torn last line (a
crash mid-write) belonged to a turn that never completed and is ignored. A file that
cannot be read is never overwritten. JSON only, never pickle.

campaign.json schema versions (older ones are migrated on load, after a backup):
    0  before the field existed: name, world, model, created
    1  + schema_version, updated, turns (the number of live turns)
    2  + settings: the campaign's own sampling and content-log settings
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 2
CAMPAIGN_FILE = "campaign.json"
TRANSCRIPT_FILE = "transcript.jsonl"
WORLD_FILE = "world.toml"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".jsonl"
MEMORY_DIR = "memory"
LOGS_DIR = "logs"
EXPORTS_DIR = "exports"
MAX_NAME_LENGTH = 64
# Settings a campaign keeps for itself (the rest comes from flags and the environment).
CAMPAIGN_SETTINGS = ("temperature", "top_p", "top_k", "repeat_penalty", "max_tokens",
                     "content_log_level")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{port}{i}" for port in ("com", "lpt") for i in range(10)}
_NAME_PATTERN = re.compile(r"^[\w][\w .-]*$")


class CampaignError(Exception):
    """A campaign problem the player can fix; the message is one line and says how."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def validate_name(name: str, kind: str = "campaign") -> str:
    """Return the name if it is a safe file or folder name, else raise CampaignError."""
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
        raise CampaignError(f"Invalid {kind} name {name!r}: {reason}; "
                            "pick a name like 'my-quest'.")
    return cleaned


def _inside(folder: Path, name: str, kind: str, suffix: str = "") -> Path:
    """folder/<name><suffix>, guaranteed to be directly inside folder."""
    folder = Path(folder).resolve()
    path = folder / (validate_name(name, kind) + suffix)
    if path.parent != folder:
        raise CampaignError(f"Invalid {kind} name {name!r}: it must stay inside {folder}.")
    return path


def campaign_path(saves_dir: Path, name: str) -> Path:
    """The folder of a campaign, guaranteed to be directly inside saves_dir."""
    return _inside(saves_dir, name, "campaign")


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


# -- campaign.json: one model per schema version --------------------------------

class CampaignSettings(BaseModel):
    """Settings saved with a campaign; None means the game's default. Other keys (from a
    later storyteller, say) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    max_tokens: int | None = None
    content_log_level: int | None = Field(None, ge=0, le=3)


class _MetaV0(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: str
    world: str
    model: str
    created: str


class _MetaV1(_MetaV0):
    schema_version: Literal[1]
    updated: str
    turns: int = Field(ge=0)


class CampaignMeta(_MetaV0):
    """campaign.json as this version writes it."""

    schema_version: Literal[2]
    updated: str
    turns: int = Field(ge=0)
    settings: CampaignSettings


def _v0_to_v1(meta: dict, turns: list[Turn]) -> dict:
    return {**meta, "schema_version": 1, "updated": meta["created"], "turns": len(turns)}


def _v1_to_v2(meta: dict, turns: list[Turn]) -> dict:
    return {**meta, "schema_version": 2, "settings": {}}


SCHEMAS: dict[int, type[BaseModel]] = {0: _MetaV0, 1: _MetaV1, 2: CampaignMeta}
MIGRATIONS = {0: _v0_to_v1, 1: _v1_to_v2}  # version -> a step to the next version


def _validate_meta(meta_path: Path, meta: dict, version: int) -> dict:
    try:
        return SCHEMAS[version].model_validate(meta).model_dump(mode="json")
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "top level"
        raise CampaignError(f"{meta_path} is not a valid campaign file (schema {version}, "
                            f"{where}: {problem['msg']}); it was left untouched: fix it or "
                            "restore it from a backup.") from None


def _read_meta(meta_path: Path) -> dict:
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CampaignError(f"{meta_path} is corrupt ({error.__class__.__name__}); it was "
                            "left untouched: restore it from a backup.") from None
    except OSError as error:
        raise CampaignError(f"Cannot read {meta_path}: {error.strerror}.") from None
    if not isinstance(meta, dict) or "name" not in meta:
        raise CampaignError(f"{meta_path} is not a campaign file; it was left untouched.")
    return meta


def _schema_version(meta_path: Path, meta: dict) -> int:
    version = meta.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CampaignError(f"{meta_path} has an invalid schema_version {version!r}; it was "
                            "left untouched: fix it or restore it from a backup.")
    if version > SCHEMA_VERSION:
        raise CampaignError(f"{meta_path} was written by a newer storyteller (schema "
                            f"{version}); upgrade storyteller to load it.")
    return version


def migrate_meta(meta_path: Path, meta: dict, turns: list[Turn]) -> dict:
    """Bring campaign.json to SCHEMA_VERSION: validate the old version, keep a backup of
    the file as it was, then write the migrated one atomically."""
    version = _schema_version(meta_path, meta)
    meta = _validate_meta(meta_path, meta, version)
    if version == SCHEMA_VERSION:
        return meta
    original, old_version = meta_path.read_text(encoding="utf-8"), version
    while version < SCHEMA_VERSION:
        meta = MIGRATIONS[version](meta, turns)
        version += 1
    meta = _validate_meta(meta_path, meta, SCHEMA_VERSION)
    backup = unused_path(meta_path.parent, f"{CAMPAIGN_FILE}.v{old_version}", ".bak")
    try:
        write_atomic(backup, original)
        write_atomic(meta_path, _meta_text(meta))
    except OSError as error:
        raise CampaignError(f"Cannot migrate {meta_path} to schema {SCHEMA_VERSION}: "
                            f"{error.strerror}; it was left untouched, make the saves "
                            "directory writable and try again.") from None
    return meta


def _meta_text(meta: dict) -> str:
    return json.dumps(meta, indent=2, ensure_ascii=False) + "\n"


def unused_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/<stem><suffix>, or with -2, -3... after the stem if that exists already."""
    candidate, count = folder / f"{stem}{suffix}", 1
    while candidate.exists():
        count += 1
        candidate = folder / f"{stem}-{count}{suffix}"
    return candidate


# -- durable writes --------------------------------------------------------------

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: Path, text: str) -> None:
    """Write text so that the file is either the old version or the new one, never torn."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode_record(record: dict) -> bytes:
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: JSON's \u escapes keep it exactly
        return (json.dumps(record) + "\n").encode("ascii")


def _complete_lines(data: bytes) -> bytes:
    """Everything up to the last newline: what follows it is a torn, unfinished write."""
    return data[: data.rfind(b"\n") + 1]


def read_jsonl(path: Path) -> list[dict]:
    """The complete JSON records of an append-only .jsonl file, in order ([] if absent).
    A torn last line (a crash mid-write) belonged to a record that never completed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise CampaignError(f"Cannot read {path}: {error.strerror}.") from None
    records = []
    for number, raw in enumerate(_complete_lines(data).split(b"\n")[:-1], start=1):
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
    """Append one record as a line, fsynced before returning. A torn last line (from a
    crash) is cut first, and a partial write (a full disk) is taken back, so every
    record starts on its own line. Raises OSError."""
    data = _encode_record(record)
    _drop_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _drop_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        os.truncate(path, len(_complete_lines(data)))


def _unreadable(path: Path, number: int, error: Exception) -> str:
    return (f"{path} line {number} is unreadable ({error.__class__.__name__}); "
            "restore it from a backup or remove that line.")


def read_transcript(path: Path) -> list[Turn]:
    """Replay a transcript's (or checkpoint's) records into the list of live turns."""
    turns: list[Turn] = []
    for number, record in enumerate(read_jsonl(path), start=1):
        try:
            _replay(record, turns)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CampaignError(_unreadable(path, number, error)) from None
    return turns


def _replay(record: dict, turns: list[Turn]) -> None:
    kind = record.get("type")
    if kind == "undo":
        if turns:
            turns.pop()
    elif kind == "turn":
        if record.get("replaces") and turns:  # /retry: one record, so a crash keeps one
            turns.pop()
        turns.append(Turn.from_record(record))
    else:
        raise ValueError(f"unknown record type {kind!r}")


# -- autosave state and listings ------------------------------------------------

@dataclass(frozen=True)
class SaveState:
    """What is on disk, for the status bar and the trace."""

    ok: bool  # the last transcript write landed: every turn played is on disk
    turns: int
    at: str  # when the transcript was last written ("" before any write this session)
    problem: str = ""  # the last failed write, one line (campaign.json's, when ok)

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if not self.ok:
            return f"NOT SAVED: {self.problem}"
        return f"saved ({CAMPAIGN_FILE} not updated: {self.problem})" if self.problem else "saved"


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    turns: int
    created: str


@dataclass(frozen=True)
class CampaignInfo:
    name: str
    world: str
    turns: int
    last_played: str
    size_bytes: int
    problem: str = ""  # why it cannot be loaded, if it cannot


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
            meta = _read_meta(folder / CAMPAIGN_FILE)
            turns = len(read_transcript(folder / TRANSCRIPT_FILE))
            found.append(CampaignInfo(folder.name, str(meta.get("world", "?")), turns,
                                      str(meta.get("updated") or meta.get("created", "")),
                                      folder_size(folder)))
        except CampaignError as error:
            found.append(CampaignInfo(folder.name, "?", 0, "", folder_size(folder),
                                      problem=str(error)))
    return sorted(found, key=lambda info: info.last_played, reverse=True)


def delete_campaign(saves_dir: Path, name: str) -> Path:
    """Remove a campaign folder; only a real campaign folder directly in saves_dir."""
    path = campaign_path(saves_dir, name)
    if path.is_symlink():
        raise CampaignError(f"{path} is a link, not a campaign folder; remove it yourself.")
    if not (path / CAMPAIGN_FILE).is_file():
        raise CampaignError(f"No campaign named {name!r} in {saves_dir}.")
    try:
        shutil.rmtree(path)
    except OSError as error:
        raise CampaignError(f"Cannot delete {path}: {error.strerror}; check that the saves "
                            "directory is writable.") from None
    return path


# -- a campaign -----------------------------------------------------------------

class Campaign:
    """One campaign folder: metadata, the world it was started with, and its turns."""

    def __init__(self, path: Path, meta: dict, turns: list[Turn]):
        self.path = path
        self.meta = meta
        self.turns = turns
        self.last_saved = ""
        self.save_problem = ""  # the last transcript write failed: this is why
        self.meta_problem = ""  # campaign.json could not be updated (the turns are safe)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def world_text(self) -> str:
        return (self.path / WORLD_FILE).read_text(encoding="utf-8")

    @property
    def transcript_path(self) -> Path:
        return self.path / TRANSCRIPT_FILE

    @property
    def next_turn_number(self) -> int:
        return self.turns[-1].number + 1 if self.turns else 1

    @property
    def settings(self) -> dict:
        """The campaign's own settings that are set (None values left out)."""
        stored = self.meta.get("settings") or {}
        return {key: value for key, value in stored.items() if value is not None}

    @property
    def save_state(self) -> SaveState:
        return SaveState(ok=not self.save_problem, turns=len(self.turns), at=self.last_saved,
                         problem=self.save_problem or self.meta_problem)

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
                "settings": {},
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
        meta = _read_meta(meta_path)
        turns = read_transcript(path / TRANSCRIPT_FILE)
        meta = migrate_meta(meta_path, meta, turns)
        meta["turns"] = len(turns)  # the transcript is the truth, campaign.json may lag
        return cls(path, meta, turns)

    def append_turn(self, turn: Turn) -> None:
        """Record a completed turn durably (flushed and fsynced) before returning."""
        self._append_record(turn.to_record())
        self.turns.append(turn)
        self._touch()

    def replace_last_turn(self, turn: Turn) -> Turn:
        """/retry: the new telling replaces the last turn in one record, so a crash
        leaves either the old turn or the new one, never neither."""
        self._append_record({**turn.to_record(), "replaces": self.turns[-1].number})
        old = self.turns.pop()
        self.turns.append(turn)
        self._touch()
        return old

    def undo(self) -> Turn | None:
        """Take back the last turn; returns it, or None when there is nothing to undo."""
        if not self.turns:
            return None
        self._append_record({"type": "undo", "turn": self.turns[-1].number, "at": now_iso()})
        turn = self.turns.pop()
        self._touch()
        return turn

    def update_settings(self, values: dict) -> None:
        """Keep these settings with the campaign (campaign.json, best effort)."""
        settings = CampaignSettings.model_validate({**self.settings, **values})
        if settings.model_dump(exclude_none=True) != self.settings:
            self.meta["settings"] = settings.model_dump(mode="json")
            self._write_meta_quietly()

    # -- checkpoints -------------------------------------------------------------

    def checkpoint_path(self, name: str) -> Path:
        return _inside(self.path / CHECKPOINTS_DIR, name, "checkpoint", CHECKPOINT_SUFFIX)

    def checkpoints(self) -> list[CheckpointInfo]:
        folder = self.path / CHECKPOINTS_DIR
        found = []
        for path in sorted(folder.glob(f"*{CHECKPOINT_SUFFIX}"), key=os.path.getmtime):
            try:
                turns = len(read_transcript(path))
            except CampaignError:
                turns = -1
            created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found.append(CheckpointInfo(path.stem, turns, created.isoformat(timespec="seconds")))
        return found

    def save_checkpoint(self, name: str) -> Path:
        """/save NAME: a copy of the transcript as it is now. Never overwrites one."""
        path = self.checkpoint_path(name)
        if path.exists():
            raise CampaignError(f"A checkpoint named {path.stem!r} exists already; "
                                "pick another name (/load lists them).")
        try:
            path.parent.mkdir(exist_ok=True)
            write_atomic(path, self._transcript_bytes().decode("utf-8"))
        except OSError as error:
            raise CampaignError(f"Cannot write checkpoint {path}: {error.strerror}; nothing "
                                "was changed, free some disk space and try again.") from None
        return path

    def load_checkpoint(self, name: str) -> str:
        """/load NAME: the story as it was at the checkpoint. The story as it is now is
        first kept as a new checkpoint, whose name is returned, so nothing is lost."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            known = ", ".join(c.name for c in self.checkpoints()) or "none yet"
            raise CampaignError(f"No checkpoint named {path.stem!r}; checkpoints: {known}.")
        turns = read_transcript(path)  # a broken checkpoint stops here, changing nothing
        text = _complete_lines(path.read_bytes()).decode("utf-8")
        kept = unused_path(self.path / CHECKPOINTS_DIR,
                           f"before-load-{datetime.now(UTC):%Y%m%d-%H%M%S}", CHECKPOINT_SUFFIX).stem
        self.save_checkpoint(kept)
        try:
            write_atomic(self.transcript_path, text)
        except OSError as error:
            self._save_failed(error)
            raise CampaignError(f"Cannot write {self.transcript_path}: {error.strerror}; the "
                                "story was not changed, free some disk space and try "
                                "again.") from None
        self.turns = turns
        self._saved()
        self._touch()
        return kept

    def _transcript_bytes(self) -> bytes:
        try:
            return _complete_lines(self.transcript_path.read_bytes())
        except FileNotFoundError:
            return b""

    # -- writing -----------------------------------------------------------------

    def _append_record(self, record: dict) -> None:
        transcript = self.transcript_path
        try:
            append_jsonl(transcript, record)
        except OSError as error:
            self._save_failed(error)
            raise CampaignError(f"Cannot write {transcript}: {_reason(error)}; the turn was "
                                "not saved, free some disk space or make the saves "
                                "directory writable, then try again.") from None
        self._saved()

    def _saved(self) -> None:
        self.last_saved = now_iso()
        self.save_problem = ""

    def _save_failed(self, error: OSError) -> None:
        self.save_problem = _describe(error, self.transcript_path)

    def _touch(self) -> None:
        self.meta["updated"] = now_iso()
        self.meta["turns"] = len(self.turns)
        self._write_meta_quietly()

    def _write_meta_quietly(self) -> None:
        """campaign.json is a convenience: the transcript already holds every turn, so a
        failure here is reported in the save state, not raised."""
        try:
            self._write_meta()
        except OSError as error:
            self.meta_problem = _describe(error, self.path / CAMPAIGN_FILE)
        else:
            self.meta_problem = ""

    def _write_meta(self) -> None:
        write_atomic(self.path / CAMPAIGN_FILE, _meta_text(self.meta))


def _reason(error: OSError) -> str:
    return error.strerror or errno.errorcode.get(error.errno or 0, str(error))


def _describe(error: OSError, path: Path) -> str:
    return f"{_reason(error)} ({error.filename or path})"
