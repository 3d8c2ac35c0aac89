"""transcript.jsonl: the story, one record a line, appended and fsynced when a turn
completes. /undo and /retry append records instead of rewriting the file. Every record
has an `id` and names the record it follows (`after`), so the records form a tree whose
one line, from the last record written back to the first, is the story: replaying that
line gives the live turns. Any other line (a fork: two writers at once, before the lock)
is a Branch, until the campaign keeps it as a checkpoint (a "branch" record says so)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.durable import read_jsonl, unreadable_line
from storyteller.storage.names import now_iso
from storyteller.storage.schema import TranscriptLinker
from storyteller.text import shared_prefix

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


RECORD_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


def new_record_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Branch:
    """A line of the story that is not the story: a fork's other side."""

    tip: str  # the id of its last record
    records: list[dict]  # its line, first record first
    turns: list[Turn]
    forked_at: int  # the number of its first turn the story does not share


@dataclass(frozen=True)
class Story:
    turns: list[Turn]
    head: str | None  # the id of the last record: the next one follows it
    branches: list[Branch]  # forks not kept yet


def read_transcript(path: Path) -> list[Turn]:
    """Replay a transcript's (or checkpoint's) story into the list of live turns."""
    return replay_transcript(path).turns


def replay_transcript(path: Path) -> Story:
    """The story line of a transcript (or checkpoint), and its branches not yet kept."""
    records, position = [], {}
    linker = TranscriptLinker()
    for number, record in enumerate(read_jsonl(path), start=1):
        try:
            records.append(linker.link(record))
        except RECORD_ERRORS as error:
            raise SaveError(unreadable_line(path, number, error)) from None
        position[records[-1]["id"]] = number
    if not records:
        return Story([], None, [])
    by_id = {record["id"]: record for record in records}

    def turns_of(line: list[dict]) -> list[Turn]:
        turns: list[Turn] = []
        for record in line:
            try:
                _replay(record, turns)
            except RECORD_ERRORS as error:
                raise SaveError(unreadable_line(path, position[record["id"]], error)) from None
        return turns

    head = records[-1]["id"]
    story = turns_of(_line(by_id, head))
    followed = {record.get("after") for record in records}
    kept = {record.get("tip") for record in records if record.get("type") == "branch"}
    branches = []
    for record in records:
        if record["id"] in followed or record["id"] in kept or record["id"] == head:
            continue
        line = _line(by_id, record["id"])
        turns = turns_of(line)
        shared = shared_prefix(turns, story)
        if shared < len(turns):  # a branch the story holds all of loses nothing
            branches.append(Branch(record["id"], line, turns, turns[shared].number))
    return Story(story, head, branches)


def _line(by_id: dict[str, dict], tip: str) -> list[dict]:
    """The records from the first to `tip`, following `after` back (links point only to
    earlier records, checked by the linker, so this ends)."""
    line = []
    record_id: str | None = tip
    while record_id is not None:
        record = by_id[record_id]
        line.append(record)
        record_id = record.get("after")
    return line[::-1]


def _replay(record: dict, turns: list[Turn]) -> None:
    kind = record.get("type")
    if kind == "undo":
        if turns:
            turns.pop()
    elif kind == "turn":
        if record.get("replaces") and turns:  # /retry: one record, so a crash keeps one
            turns.pop()
        turns.append(Turn.from_record(record))
    elif kind != "branch":  # a branch record only marks a fork as kept
        raise ValueError(f"unknown record type {kind!r}")
