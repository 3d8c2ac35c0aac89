"""SillyTavern's formats: World Info files, character cards (V1, V2 and V3: the card's
JSON; png.py finds it in a PNG) and chats (.jsonl).

Lorebook entries are read the way SillyTavern's own code reads them (world-info.js and
its character book conversion): `selectiveLogic` is 0 AND ANY, 1 NOT ALL, 2 NOT ANY,
3 AND ALL, a missing or unknown value AND ANY. An entry's fields that have no place in a
world (position, depth, order, probability, ...) are kept as its placement."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.interop.draft import (
    FormatProblem,
    LoreDraft,
    WorldDraft,
    clean_text,
    entry_objects,
    fill_macros,
    finish_entry,
    finish_lore,
    lorebook_draft,
    number,
    one_line,
    strings,
    unread,
)

CHARACTER_IMPORTANCE = 10
DEFAULT_ORDER = 100  # SillyTavern's default insertion order
SELECTIVE_LOGIC = {0: "AND ANY", 1: "NOT ALL", 2: "NOT ANY", 3: "AND ALL"}  # world_info_logic
CARD_SPECS = {"chara_card_v2": "V2", "chara_card_v3": "V3"}
_CARD_FIELDS_READ = {"name", "nickname", "description", "personality", "scenario",
                     "first_mes", "alternate_greetings", "character_book"}


@dataclass(frozen=True)
class _EntryFields:
    """Where one of SillyTavern's lorebook formats keeps an entry's parts."""

    keys: str
    secondary_keys: str
    order: str
    names: tuple[str, ...]  # the first non-empty one names the entry


_WORLD_INFO = _EntryFields("key", "keysecondary", "order", ("comment",))
_CHARACTER_BOOK = _EntryFields("keys", "secondary_keys", "insertion_order", ("comment", "name"))


# -- lorebooks ------------------------------------------------------------------

def world_info_draft(data: dict, title: str) -> WorldDraft:
    """A World Info file: {"entries": {uid: entry}}."""
    entries = entry_objects(data["entries"].items())
    drafts = [_lore(entry, _WORLD_INFO, entry.get("selectiveLogic"),
                    enabled=not entry.get("disable")) for entry in entries]
    return lorebook_draft(drafts, title, "SillyTavern World Info")


def character_book_draft(book: dict, title: str) -> WorldDraft:
    """A card's lorebook on its own: {"entries": [...]}."""
    return lorebook_draft(_book_lore(book), title, "SillyTavern character book")


def _book_lore(book: dict) -> list[LoreDraft]:
    entries = book.get("entries", [])
    if not isinstance(entries, list):
        raise FormatProblem("its character_book has no list of entries")
    return [_lore(entry, _CHARACTER_BOOK, _extensions(entry).get("selectiveLogic"),
                  enabled=bool(entry.get("enabled", True)))
            for entry in entry_objects(enumerate(entries, start=1))]


def _extensions(entry: dict) -> dict:
    extensions = entry.get("extensions")
    return extensions if isinstance(extensions, dict) else {}


def _lore(entry: dict, fields: _EntryFields, logic: object, enabled: bool) -> LoreDraft:
    text, decorators = _split_decorators(clean_text(entry.get("content")))
    read = {fields.keys, fields.secondary_keys, *fields.names, "content", "constant",
            "selective", "selectiveLogic", "disable", "enabled", "use_regex"}
    placement = unread(entry, read) | ({"decorators": decorators} if decorators else {})
    return LoreDraft(
        name=next((n for n in (clean_text(entry.get(f)) for f in fields.names) if n), ""),
        text=text, aliases=strings(entry.get(fields.keys)),
        secondary_keys=strings(entry.get(fields.secondary_keys)),
        selective=bool(entry.get("selective")), selective_logic=selective_logic(logic),
        pinned=bool(entry.get("constant")), enabled=enabled,
        order=number(entry.get(fields.order), DEFAULT_ORDER), placement=placement,
        regex_keys=bool(entry.get("use_regex")))


def selective_logic(value: object) -> str:
    known = isinstance(value, int) and not isinstance(value, bool)
    return SELECTIVE_LOGIC.get(value, "AND ANY") if known else "AND ANY"


def _split_decorators(text: str) -> tuple[str, list[str]]:
    """A V3 card entry's leading `@@decorator` lines, apart from its text."""
    lines = text.split("\n")
    count = next((i for i, line in enumerate(lines) if not line.startswith("@@")), len(lines))
    return "\n".join(lines[count:]).strip(), lines[:count]


# -- character cards -------------------------------------------------------------

def is_card(data: dict) -> bool:
    """A V2/V3 card (spec, or a `data` object with a name) or a V1 card (name and
    first_mes at the top)."""
    inner = data.get("data")
    return (data.get("spec") in CARD_SPECS or (isinstance(inner, dict) and "name" in inner)
            or ("name" in data and "first_mes" in data))


def card_draft(card: dict) -> WorldDraft:
    """The card's character becomes the world's main character (pinned), its scenario
    the setting, first_mes the opening, alternate_greetings the other openings and its
    character_book the lore; {{char}} is the character's name, {{user}} "you"."""
    data = card["data"] if isinstance(card.get("data"), dict) else card
    name = one_line(clean_text(data.get("name")))
    if not name:
        raise FormatProblem("the character card has no name")
    character = finish_entry(LoreDraft(
        name=name, text=_character_text(data) or f"{name} is the story's main character.",
        aliases=strings(data.get("nickname")), pinned=True, importance=CHARACTER_IMPORTANCE,
        table="characters"), name)
    book = data.get("character_book")
    lore, notes = finish_lore(_book_lore(book) if isinstance(book, dict) else [], name)
    unused = sorted(key for key, value in data.items()
                    if key not in _CARD_FIELDS_READ and value not in (None, "", [], {}, False))
    if unused:
        notes.append(f"Not imported from the card: {', '.join(unused)}.")
    scenario = fill_macros(clean_text(data.get("scenario")), name)
    return WorldDraft(
        title=name, setting=scenario or f"A text adventure in which the player meets {name}.",
        source=f"SillyTavern character card {CARD_SPECS.get(card.get('spec'), 'V1')}",
        opening=fill_macros(clean_text(data.get("first_mes")), name),
        openings=[fill_macros(text, name) for text in strings(data.get("alternate_greetings"))],
        lore=[character, *lore], notes=notes)


def _character_text(data: dict) -> str:
    description = clean_text(data.get("description"))
    personality = clean_text(data.get("personality"))
    return "\n\n".join(part for part in (description, personality and
                                         f"Personality: {personality}") if part)


# -- chats ----------------------------------------------------------------------

@dataclass(frozen=True)
class Chat:
    """A SillyTavern chat as storyteller turns: (the player's input, the narration)."""

    turns: list[tuple[str, str]]
    opening: str = ""
    user_name: str = ""
    character_name: str = ""


def read_chat(path: Path) -> Chat:
    """A chat .jsonl: a metadata line, then one line per message. Messages in a row from
    one side are one turn's part (joined by a blank line), a first message from the
    character is the opening, system messages are skipped and a message with swipes
    counts with its chosen swipe only."""
    path = Path(path)
    header: dict | None = None
    messages: list[tuple[bool, str]] = []
    try:
        with open(path, "rb") as file:
            for line_number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                record = _chat_record(path, line_number, line, header is None)
                if header is None:
                    header = record
                elif not record.get("is_system"):
                    messages.append((bool(record.get("is_user")),
                                     _message_text(path, line_number, record)))
    except OSError as error:
        raise SaveError(f"Cannot read the chat {path}: {error.strerror or error}.") from None
    if header is None:
        raise SaveError(f"The chat {path} is empty; a SillyTavern chat starts with a line "
                        "of metadata.")
    turns, opening = _turns(messages)
    return Chat(turns, opening, clean_text(header.get("user_name")),
                clean_text(header.get("character_name")))


def _chat_record(path: Path, line_number: int, line: bytes, first: bool) -> dict:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise SaveError(f"The chat {path} is not UTF-8 text at line {line_number}.") from None
    except (json.JSONDecodeError, RecursionError):
        raise SaveError(f"The chat {path} has a line that is not JSON: line "
                        f"{line_number}.") from None
    if not isinstance(record, dict):
        raise SaveError(f"The chat {path} has a line that is not a JSON object: line "
                        f"{line_number}.")
    if first and "mes" in record:
        raise SaveError(f"The chat {path} starts with a message, not the metadata line a "
                        f"SillyTavern chat starts with (line {line_number}).")
    return record


def _message_text(path: Path, line_number: int, record: dict) -> str:
    swipes, chosen = record.get("swipes"), record.get("swipe_id")
    if (isinstance(swipes, list) and isinstance(chosen, int) and not isinstance(chosen, bool)
            and 0 <= chosen < len(swipes) and isinstance(swipes[chosen], str)):
        return swipes[chosen]
    if not isinstance(record.get("mes"), str):
        raise SaveError(f"The chat {path} has a message without text ('mes') at line "
                        f"{line_number}.")
    return record["mes"]


def _turns(messages: list[tuple[bool, str]]) -> tuple[list[tuple[str, str]], str]:
    """(turns, opening) from (is_user, text) messages in order."""
    sides: list[tuple[bool, list[str]]] = []
    for is_user, text in messages:
        if sides and sides[-1][0] == is_user:
            sides[-1][1].append(text)
        else:
            sides.append((is_user, [text]))
    texts = ["\n\n".join(text for text in side if text) for _, side in sides]
    opening = texts.pop(0) if sides and not sides[0][0] else ""
    # from here the sides alternate, the player's first
    return [(texts[i], texts[i + 1] if i + 1 < len(texts) else "")
            for i in range(0, len(texts), 2)], opening


def write_chat(turns: list[tuple[str, str]], opening: str, user_name: str,
               character_name: str, now: datetime | None = None) -> str:
    """A chat .jsonl SillyTavern imports: the metadata line, the opening (if any) as the
    character's first message, then the player's input and the narration of each turn."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    sent = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def message(is_user: bool, text: str) -> dict:
        return {"name": user_name if is_user else character_name, "is_user": is_user,
                "is_system": False, "send_date": sent, "mes": text, "extra": {}}

    records = [{"user_name": user_name, "character_name": character_name,
                "create_date": f"{now:%Y-%m-%d@%Hh%Mm%Ss}{now.microsecond // 1000:03d}ms",
                "chat_metadata": {}}]
    if opening:
        records.append(message(False, opening))
    for player_input, output in turns:
        records += [message(True, player_input), message(False, output)]
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
