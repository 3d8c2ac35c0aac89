"""One campaign folder: its metadata, the world it was started with, its turns, and its
checkpoints. A turn that finished is never lost: its record is fsynced before the turn
returns. A file that cannot be read is never overwritten."""

from __future__ import annotations

import errno
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.durable import append_jsonl, complete_lines, rewrite_jsonl, write_atomic
from storyteller.storage.names import campaign_path, inside, now_iso, unused_path, validate_name
from storyteller.storage.schema import (
    CAMPAIGN_FILE,
    SCHEMA_VERSION,
    CampaignSettings,
    meta_text,
    migrate_meta,
    read_meta,
    upgraded_meta,
)
from storyteller.storage.transcript import (
    TRANSCRIPT_FILE,
    Branch,
    Turn,
    new_record_id,
    read_transcript,
    replay_transcript,
)

WORLD_FILE = "world.toml"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".jsonl"
MEMORY_DIR = "memory"
LOGS_DIR = "logs"
EXPORTS_DIR = "exports"
CONTENT_LOG_FILE = "content.jsonl"


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


class Campaign:
    """One campaign folder: metadata, the world it was started with, and its turns."""

    def __init__(self, path: Path, meta: dict, turns: list[Turn], head: str | None = None,
                 branches: list[Branch] | None = None):
        self.path = path
        self.meta = meta
        self.turns = turns
        self.head = head  # the id of the transcript's last record: the next one follows it
        self.branches = branches or []  # forks found on load, for keep_branches()
        self.notices: list[str] = []  # for the player when the game opens
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
    def content_log_path(self) -> Path:
        return self.path / LOGS_DIR / CONTENT_LOG_FILE

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
               model: str, turns: list[Turn] | None = None, **extra_meta) -> Campaign:
        """A new campaign folder; with `turns`, a story imported from elsewhere (its
        transcript written whole, before campaign.json, which makes the campaign)."""
        path = campaign_path(saves_dir, name)
        turns = list(turns or [])
        try:
            path.mkdir(parents=True, exist_ok=True)
            write_atomic(path / WORLD_FILE, world_text)
            if turns:
                rewrite_jsonl(path / TRANSCRIPT_FILE, [turn.to_record() for turn in turns])
            meta = {
                "schema_version": SCHEMA_VERSION,
                "name": validate_name(name),
                "world": world_name,
                "model": model,
                "created": now_iso(),
                "updated": now_iso(),
                "turns": len(turns),
                "settings": {},
                **extra_meta,
            }
            campaign = cls(path, meta, turns)
            campaign._write_meta()
        except OSError as error:
            raise SaveError(f"Cannot create campaign in {path}: {error.strerror}; "
                                "check that the saves directory is writable.") from None
        return campaign

    @classmethod
    def load(cls, saves_dir: Path, name: str, read_only: bool = False) -> Campaign:
        """read_only: an older campaign.json is migrated in memory, not on disk (the
        caller writes nothing either)."""
        path = campaign_path(saves_dir, name)
        meta_path = path / CAMPAIGN_FILE
        if not meta_path.exists():
            raise SaveError(f"No campaign named {name!r} in {saves_dir}.")
        meta = read_meta(meta_path)
        story = replay_transcript(path / TRANSCRIPT_FILE)
        migrate = upgraded_meta if read_only else migrate_meta
        meta = migrate(meta_path, meta, len(story.turns))
        meta["turns"] = len(story.turns)  # the transcript is the truth, campaign.json may lag
        return cls(path, meta, story.turns, story.head, story.branches)

    def keep_branches(self) -> list[Branch]:
        """A transcript forked by two writers at once (before the one-writer lock) goes
        on along the line of its last record; each other branch is kept here as a
        checkpoint named after it, and a record says so, so the player is told once.
        Call it holding the campaign's lock. Returns the branches kept (and adds a
        notice for each to `notices`)."""
        kept = []
        for branch in self.branches:
            name = unused_path(self.path / CHECKPOINTS_DIR,
                               f"branch-turn-{branch.forked_at}-{branch.tip[:8]}",
                               CHECKPOINT_SUFFIX).stem
            try:
                self.checkpoint_path(name).parent.mkdir(exist_ok=True)
                rewrite_jsonl(self.checkpoint_path(name), branch.records)
            except OSError as error:
                raise SaveError(f"Cannot keep the story's other branch as checkpoint "
                                f"{name!r}: {_reason(error)}; nothing was changed, free some "
                                "disk space and open the campaign again.") from None
            self._append_record({"type": "branch", "tip": branch.tip, "checkpoint": name,
                                 "at": now_iso()})
            kept.append(branch)
            self.notices.append(
                f"This story had forked: two storytellers wrote turn {branch.forked_at} at "
                f"once. It goes on from the turn written last; the other branch "
                f"({len(branch.turns)} turns) is kept as checkpoint {name!r} (/load {name}).")
        self.branches = []
        return kept

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
        return inside(self.path / CHECKPOINTS_DIR, name, "checkpoint", CHECKPOINT_SUFFIX)

    def checkpoints(self) -> list[CheckpointInfo]:
        folder = self.path / CHECKPOINTS_DIR
        found = []
        for path in sorted(folder.glob(f"*{CHECKPOINT_SUFFIX}"), key=os.path.getmtime):
            try:
                turns = len(read_transcript(path))
            except SaveError:
                turns = -1
            created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found.append(CheckpointInfo(path.stem, turns, created.isoformat(timespec="seconds")))
        return found

    def save_checkpoint(self, name: str) -> Path:
        """/save NAME: a copy of the transcript as it is now. Never overwrites one."""
        path = self.checkpoint_path(name)
        if path.exists():
            raise SaveError(f"A checkpoint named {path.stem!r} exists already; "
                                "pick another name (/load lists them).")
        try:
            path.parent.mkdir(exist_ok=True)
            write_atomic(path, self._transcript_bytes().decode("utf-8"))
        except OSError as error:
            raise SaveError(f"Cannot write checkpoint {path}: {error.strerror}; nothing "
                                "was changed, free some disk space and try again.") from None
        return path

    def load_checkpoint(self, name: str) -> str:
        """/load NAME: the story as it was at the checkpoint. The story as it is now is
        first kept as a new checkpoint, whose name is returned, so nothing is lost."""
        path = self.checkpoint_path(name)
        if not path.is_file():
            known = ", ".join(c.name for c in self.checkpoints()) or "none yet"
            raise SaveError(f"No checkpoint named {path.stem!r}; checkpoints: {known}.")
        story = replay_transcript(path)  # a broken checkpoint stops here, changing nothing
        text = complete_lines(path.read_bytes()).decode("utf-8")
        kept = unused_path(self.path / CHECKPOINTS_DIR,
                           f"before-load-{datetime.now(UTC):%Y%m%d-%H%M%S}", CHECKPOINT_SUFFIX).stem
        self.save_checkpoint(kept)
        try:
            write_atomic(self.transcript_path, text)
        except OSError as error:
            self._save_failed(error)
            raise SaveError(f"Cannot write {self.transcript_path}: {error.strerror}; the "
                                "story was not changed, free some disk space and try "
                                "again.") from None
        self.turns, self.head = story.turns, story.head
        self._saved()
        self._touch()
        return kept

    def _transcript_bytes(self) -> bytes:
        try:
            return complete_lines(self.transcript_path.read_bytes())
        except FileNotFoundError:
            return b""

    # -- writing -----------------------------------------------------------------

    def _append_record(self, record: dict) -> None:
        """Append a record that follows the last one (its id and `after` added)."""
        transcript = self.transcript_path
        record = {**record, "id": new_record_id(), "after": self.head}
        try:
            append_jsonl(transcript, record)
        except OSError as error:
            self._save_failed(error)
            raise SaveError(f"Cannot write {transcript}: {_reason(error)}; the turn was "
                                "not saved, free some disk space or make the saves "
                                "directory writable, then try again.") from None
        self.head = record["id"]
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
        write_atomic(self.path / CAMPAIGN_FILE, meta_text(self.meta))


def _reason(error: OSError) -> str:
    return error.strerror or errno.errorcode.get(error.errno or 0, str(error))


def _describe(error: OSError, path: Path) -> str:
    return f"{_reason(error)} ({error.filename or path})"
