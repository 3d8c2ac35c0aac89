"""transcript.jsonl: the story, one record a line, appended and fsynced when a turn
completes. /undo and /retry append records instead of rewriting the file; replaying
the records gives the live turns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.durable import read_jsonl, unreadable_line
from storyteller.storage.names import now_iso

TRANSCRIPT_FILE = "transcript.jsonl"


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


def read_transcript(path: Path) -> list[Turn]:
    """Replay a transcript's (or checkpoint's) records into the list of live turns."""
    turns: list[Turn] = []
    for number, record in enumerate(read_jsonl(path), start=1):
        try:
            _replay(record, turns)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SaveError(unreadable_line(path, number, error)) from None
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


def shared_turns(one: list[Turn], other: list[Turn]) -> int:
    """How many turns two versions of a story share from the start."""
    shared = 0
    for first, second in zip(one, other, strict=False):
        if first != second:
            break
        shared += 1
    return shared
