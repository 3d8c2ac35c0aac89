"""A story told elsewhere, read as storyteller turns (`storyteller import`): a JSONL of
{"input": ..., "output": ...} turns, a SillyTavern chat (.jsonl) or storyteller's own
JSON export. The format is told by the content, not the file name. Every line is
checked before anything is written: a bad one is named by file and line number."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.interop.sillytavern import read_chat
from storyteller.storage.transcript import Turn

MAX_STORY_BYTES = 256 * 2**20  # a 338-turn conversation is well under 1 MB
EXPORT_FORMAT = "storyteller-story"  # export.story_json's "format"
EXPORT_VERSIONS = (1,)
# The keys of a SillyTavern chat's first line (its metadata) or of a message.
CHAT_KEYS = {"user_name", "character_name", "create_date", "chat_metadata", "mes"}


@dataclass(frozen=True)
class StoryFile:
    turns: list[Turn]
    opening: str | None  # the story's own opening scene, if the file has one
    kind: str  # "turns", "SillyTavern chat" or "storyteller export"


def read_story(path: Path) -> StoryFile:
    """The turns (numbered from 1) and opening of a story file; SaveError (one line,
    naming the file and the line) if any part of it is unreadable."""
    path = Path(path)
    text = _text(path)
    lines = text.splitlines()
    first = next((number for number, line in enumerate(lines, start=1) if line.strip()), 0)
    if not first:
        raise SaveError(f"{path} is empty; import a JSONL of turns, a SillyTavern chat or "
                        "a storyteller JSON export.")
    story = _story(path, text, lines, first)
    if not story.turns and not story.opening:
        raise SaveError(f"{path} holds no turns.")
    return replace(story, turns=[replace(turn, number=number)
                                 for number, turn in enumerate(story.turns, start=1)])


def _story(path: Path, text: str, lines: list[str], first: int) -> StoryFile:
    """Told by the first line: an export's "{" (or its "format"), a turn, or a chat's
    metadata."""
    head = lines[first - 1]
    record = {} if head.strip() == "{" else _line_record(path, first, head)
    if not record or record.get("format") == EXPORT_FORMAT:
        return _export(path, text)
    if "input" in record or "output" in record:
        return _turns(path, lines)
    if CHAT_KEYS & record.keys():
        chat = read_chat(path)
        return StoryFile([Turn(0, said, told) for said, told in chat.turns],
                         chat.opening or None, "SillyTavern chat")
    raise SaveError(f"{path} line {first} is neither a turn (\"input\", \"output\") nor a "
                    "SillyTavern chat's metadata; import a JSONL of turns, a SillyTavern "
                    "chat or a storyteller JSON export.")


def _text(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_STORY_BYTES + 1)
    except OSError as error:
        raise SaveError(f"Cannot read {path}: {error.strerror or error}.") from None
    if len(data) > MAX_STORY_BYTES:
        raise SaveError(f"{path} is more than {MAX_STORY_BYTES // 2**20} MB; split it.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise SaveError(f"{path} line {line} is not UTF-8 text; re-save it as UTF-8.") from None


def _line_record(path: Path, number: int, line: str) -> dict:
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise SaveError(f"{path} line {number} is not a JSON object ({reason}); nothing "
                        "was imported.") from None
    return record


def _turns(path: Path, lines: list[str]) -> StoryFile:
    """One {"input": ..., "output": ...} object a line; either text may be empty."""
    turns = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _line_record(path, number, line)
        said, told = record.get("input"), record.get("output")
        if not isinstance(said, str) or not isinstance(told, str):
            raise SaveError(f"{path} line {number} needs an \"input\" and an \"output\" text "
                            "(either may be empty).")
        if not said.strip() and not told.strip():
            raise SaveError(f"{path} line {number} has neither input nor output text.")
        turns.append(Turn(0, said, told))
    return StoryFile(turns, None, "turns")


def _export(path: Path, text: str) -> StoryFile:
    """`storyteller export --format json`: its turns, and its world's opening."""
    try:
        story = json.loads(text)
    except json.JSONDecodeError as error:
        raise SaveError(f"{path} line {error.lineno} is not valid JSON ({error.msg}).") from None
    except RecursionError:
        raise SaveError(f"{path} is nested too deeply to be a storyteller export.") from None
    if not isinstance(story, dict) or story.get("format") != EXPORT_FORMAT:
        raise SaveError(f"{path} is a JSON document but not a storyteller export "
                        f"(no \"format\": \"{EXPORT_FORMAT}\").")
    if story.get("version") not in EXPORT_VERSIONS:
        raise SaveError(f"{path} is a storyteller export of version {story.get('version')!r}; "
                        "this storyteller reads version "
                        f"{', '.join(map(str, EXPORT_VERSIONS))}.")
    records, world = story.get("turns"), story.get("world")
    if not isinstance(records, list):
        raise SaveError(f"{path} has no list of \"turns\".")
    turns = []
    for index, record in enumerate(records, start=1):
        try:
            if not isinstance(record, dict) or not all(
                    isinstance(record.get(key), str) for key in ("input", "output")):
                raise TypeError("needs an \"input\" and an \"output\" text")
            turns.append(Turn(0, record["input"], record["output"],
                              model=str(record.get("model", "")),
                              created=str(record.get("created", ""))))
        except TypeError as error:
            raise SaveError(f"{path}: turn {index} of \"turns\" is unreadable ({error}).") from None
    opening = world.get("opening") if isinstance(world, dict) else None
    return StoryFile(turns, opening if isinstance(opening, str) else None, "storyteller export")
