"""memories.jsonl: every memory the story wrote beyond the transcript, append-only.

Extraction is an expensive model call and pins are the player's words, so what they
produce is kept here, next to transcript.jsonl and written the same way (one JSON
record a line, fsynced). The Chroma index is rebuilt from the world file, this
journal and the transcript, without calling the model again.

Records:
    {"type": "add" | "change", "turn": N | null, "entry": {...}}   an entry written
    {"type": "remove", "turn": N | null, "id": "..."}               /forget
    {"type": "forget_from", "turn": N}    take back every earlier record of turns >= N
    {"type": "undo", "turn": N}           (older saves) take back the records of turn N
    {"type": "extracted", "turn": N, "facts": k, "rejected": r, "ms": t}

"turn" is the turn whose narration made the record: /undo and /retry of that turn
take it back. A turn's record never changes a world or player entry (older saves'
note-taking did: such records are skipped). Records of player commands (/remember,
/forget) carry null: no turn's undo takes them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.memory.entries import MemoryEntry
from storyteller.storage.durable import append_jsonl, read_jsonl
from storyteller.storage.names import now_iso

JOURNAL_FILE = "memories.jsonl"
LORE_SOURCES = ("world", "player")  # what only the world file and the player change


@dataclass
class JournalState:
    """What the journal says, replayed over the world's entries."""

    entries: dict[str, MemoryEntry] = field(default_factory=dict)  # every non-event entry
    removed: set[str] = field(default_factory=set)  # forgotten ids (events included)
    written_by: dict[str, int] = field(default_factory=dict)  # entry id -> turn that wrote it
    extracted: set[int] = field(default_factory=set)  # turns whose extraction finished


class MemoryJournal:
    def __init__(self, folder: Path):
        self.path = folder / JOURNAL_FILE
        self.records = read_jsonl(self.path)

    def write(self, kind: str, turn: int | None, **fields) -> None:
        record = {"type": kind, "turn": turn, **fields, "at": now_iso()}
        try:
            append_jsonl(self.path, record)
        except OSError as error:
            raise SaveError(f"Cannot write {self.path}: {error.strerror}; free some disk "
                            "space and try again.") from None
        self.records.append(record)

    def has_records_from(self, number: int) -> bool:
        """Whether a record was written by turn `number` or a later one."""
        return any(isinstance(record.get("turn"), int) and record["turn"] >= number
                   for record in self.records)

    def put(self, entry: MemoryEntry, turn: int | None, new: bool) -> None:
        self.write("add" if new else "change", turn, entry=entry.to_json())

    def replay(self, world: list[MemoryEntry]) -> JournalState:
        live: list[dict] = []
        for record in self.records:
            kind, turn = record.get("type"), record.get("turn")
            if kind == "undo":
                live = [kept for kept in live if kept.get("turn") != turn]
            elif kind == "forget_from":
                live = [kept for kept in live if kept.get("turn") is None or kept["turn"] < turn]
            else:
                live.append(record)
        state = JournalState(entries={entry.id: entry for entry in world})
        for number, record in enumerate(live, start=1):
            try:
                _apply(state, record)
            except (KeyError, TypeError, ValueError) as error:
                raise SaveError(f"{self.path} has an unreadable record ({number}: "
                                f"{error.__class__.__name__}: {error}); remove that line "
                                "and run `storyteller reindex`.") from None
        return state


def _apply(state: JournalState, record: dict) -> None:
    kind = record["type"]
    if kind in ("add", "change"):
        entry = MemoryEntry.from_json(record["entry"])
        if record.get("turn") is not None and entry.source in LORE_SOURCES:
            return  # older note-taking rewrote the lore: its notes are entries of their own now
        state.entries[entry.id] = entry
        state.removed.discard(entry.id)
        if record.get("turn") is None:
            state.written_by.pop(entry.id, None)
        else:
            state.written_by[entry.id] = int(record["turn"])
    elif kind == "remove":
        state.entries.pop(record["id"], None)
        state.removed.add(record["id"])
    elif kind == "extracted":
        state.extracted.add(int(record["turn"]))
