"""The neutral world draft every converter returns, and the world TOML made from it.

A converter copies what a file says into LoreDraft and WorldDraft fields as they are;
finish_lore then does what every format needs: macros filled, a name for each entry,
keys that can be matched as words, texts within the world format's limit, importance
from the file's own priorities."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import tomli_w

from storyteller.storage.worlds import MAX_LORE_NAME, MAX_LORE_TEXT
from storyteller.text import normalize_name

DEFAULT_IMPORTANCE = 5
# {{char}} in a lorebook without a card: there is no character, and in storyteller the
# model speaks as the narrator, which is what {{char}} stands for in SillyTavern.
LOREBOOK_CHAR = "the narrator"
NAME_WORDS = 6  # an entry with neither a name nor a plain key is named by its first words
_REGEX_KEY = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)  # SillyTavern and NovelAI: /dragons?/i
_USER = r"(?:\{\{\s*user\s*\}\}|<user>)"
_AGREEMENT = {"is": "are", "was": "were", "has": "have", "does": "do"}  # "{{user}} is"
_MACRO = re.compile(rf"{_USER}'s\b|{_USER}(?:(\s+)({'|'.join(_AGREEMENT)})\b)?"
                    r"|\{\{\s*char\s*\}\}|<bot>", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…][\"”’')\]*_]*(?=\s)")
_EMPTY = (None, "", [], {})


class FormatProblem(Exception):
    """What is wrong with a file to import, in a few words; the importer names the file."""


@dataclass
class LoreDraft:
    """One lore entry as its file says it; finish_lore makes it fit the world format."""

    name: str
    text: str
    aliases: list[str] = field(default_factory=list)  # the primary keys
    secondary_keys: list[str] = field(default_factory=list)
    selective: bool = False
    selective_logic: str = "AND ANY"
    pinned: bool = False
    enabled: bool = True
    order: float = 0.0  # the file's own priority: higher is more important
    importance: int = DEFAULT_IMPORTANCE
    placement: dict = field(default_factory=dict)  # the file's other fields, for the record
    regex_keys: bool = False  # every key is a regular expression (a V3 card's use_regex)
    table: str = "lore"


@dataclass
class WorldDraft:
    title: str
    setting: str
    source: str  # what kind of file it came from, said in the TOML's first comment
    opening: str = ""
    openings: list[str] = field(default_factory=list)
    lore: list[LoreDraft] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out, as TOML comments


# -- reading fields of any type --------------------------------------------------

def clean_text(value: object) -> str:
    """A string field as text (line ends as \\n, outer space stripped); any other value
    is no text."""
    if not isinstance(value, str):
        return ""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def strings(value: object) -> list[str]:
    """A list field's non-empty texts; a lone string counts as a list of one."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [text for text in map(clean_text, items) if text]


def number(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return default
    return value if math.isfinite(value) else default


def entry_objects(numbered: Iterable[tuple[object, object]]) -> Iterator[dict]:
    """The entries of a lorebook, each checked to be a JSON object."""
    for number_, entry in numbered:
        if not isinstance(entry, dict):
            raise FormatProblem(f"entry {number_} is not a JSON object")
        yield entry


def unread(entry: dict, read: Iterable[str]) -> dict:
    """The fields of an entry that the conversion did not read."""
    read = set(read)
    return {key: value for key, value in entry.items() if key not in read}


def for_the_record(value: object) -> object:
    """A JSON value as TOML can hold it: without nulls, empty texts, lists and tables."""
    if isinstance(value, dict):
        kept = {str(key): for_the_record(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in _EMPTY}
    if isinstance(value, list):
        return [item for item in map(for_the_record, value) if item not in _EMPTY]
    return value


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- what every format needs ---------------------------------------------------------

def fill_macros(text: str, char: str) -> str:
    """SillyTavern's macros, any case: {{char}} and <BOT> become char, {{user}} and
    <USER> "you" ({{user}}'s "your", "{{user}} is" "you are"), capitalized where a
    sentence or a line starts. Other verbs stay as written ("you signs")."""
    def replacement(match: re.Match) -> str:
        token = match.group(0).casefold()
        word = "your" if token.endswith("'s") else "you" if "user" in token else char
        before = match.string[max(0, match.start() - 8):match.start()].rstrip(" \t*_\"'“‘(")
        if not before or before[-1] in ".!?\n":
            word = word[:1].upper() + word[1:]
        verb = match.group(2)
        return f"{word}{match.group(1)}{_AGREEMENT[verb.casefold()]}" if verb else word

    return _MACRO.sub(replacement, text)


def trimmed(text: str, limit: int) -> str:
    """text, or its longest start within limit characters that ends a sentence (else a
    word)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [match.end() for match in _SENTENCE_END.finditer(head)]
    cut = ends[-1] if ends else head.rfind(" ")
    return head[:cut if cut > 0 else limit].strip()


def finish_entry(draft: LoreDraft, char: str) -> LoreDraft:
    """The entry with macros filled, a name, keys written as /regex/ moved to the
    placement (they cannot be matched as words), aliases without repeats and the text
    within the world format's limit. Its text must not be empty."""
    keys = [fill_macros(key, char) for key in draft.aliases]
    plain = [] if draft.regex_keys else [key for key in keys if not _REGEX_KEY.match(key)]
    regex = [key for key in keys if key not in plain]
    text = fill_macros(draft.text, char)
    name = one_line(fill_macros(draft.name, char) or (plain[0] if plain else
                                                        " ".join(text.split()[:NAME_WORDS])))
    if len(name) > MAX_LORE_NAME:
        name = name[:MAX_LORE_NAME].rsplit(" ", 1)[0]
    placement = {**draft.placement, "regex_keys": regex} if regex else draft.placement
    return replace(draft, name=name, text=trimmed(text, MAX_LORE_TEXT),
                   aliases=_other_keys(plain, name), placement=placement,
                   secondary_keys=[fill_macros(key, char) for key in draft.secondary_keys])


def _other_keys(keys: list[str], name: str) -> list[str]:
    """The keys, each once, without the name itself (normalized, as the lorebook
    compares them)."""
    seen, kept = {normalize_name(name)}, []
    for key in keys:
        normalized = normalize_name(key)
        if normalized and normalized not in seen:
            seen.add(normalized)
            kept.append(key)
    return kept


def rank_importance(orders: list[float]) -> list[int]:
    """Importance 1-10 from a file's priorities (higher is more important): its distinct
    values, lowest to highest, spread evenly over 1-10, so an outlier (one entry at 999)
    does not squeeze the rest together; all equal gives the default, 5."""
    distinct = sorted(set(orders))
    if len(distinct) < 2:
        return [DEFAULT_IMPORTANCE] * len(orders)
    rank = {value: index for index, value in enumerate(distinct)}
    return [1 + round(9 * rank[value] / (len(distinct) - 1)) for value in orders]


def finish_lore(drafts: list[LoreDraft], char: str) -> tuple[list[LoreDraft], list[str]]:
    """The enabled entries with text, finished and ranked; and notes on what was left
    out or cut."""
    enabled = [draft for draft in drafts if draft.enabled]
    kept = [draft for draft in enabled if draft.text]
    entries = [finish_entry(draft, char) for draft in kept]
    for entry, importance in zip(entries, rank_importance([d.order for d in kept]),
                                 strict=True):
        entry.importance = importance
    left_out = [f"{count} {what}" for count, what in (
        (len(drafts) - len(enabled), "disabled entries"),
        (len(enabled) - len(kept), "entries without text")) if count]
    notes = [f"Left out: {', '.join(left_out)}."] if left_out else []
    cut = sum(len(fill_macros(d.text, char)) > MAX_LORE_TEXT for d in kept)
    if cut:
        notes.append(f"{cut} entries were cut at a sentence to {MAX_LORE_TEXT} characters.")
    return entries, notes


def lorebook_draft(drafts: list[LoreDraft], title: str, source: str) -> WorldDraft:
    """A world made of a lorebook alone: its entries are the lore; {{char}} becomes
    LOREBOOK_CHAR."""
    lore, notes = finish_lore(drafts, LOREBOOK_CHAR)
    if not lore:
        raise FormatProblem("it has no enabled entry with text")
    return WorldDraft(title=title, setting=f"A text adventure in the world of {title}.",
                      source=source, lore=lore, notes=notes)


# -- the world TOML ---------------------------------------------------------------

def world_toml(draft: WorldDraft, origin: str) -> str:
    """The world file: a comment saying where it came from and what was left out, then
    title, setting, opening(s), [[characters]] and [[lore]]."""
    document: dict = {"title": draft.title, "setting": draft.setting}
    if draft.opening:
        document["opening"] = draft.opening
    if draft.openings:
        document["openings"] = draft.openings
    for table in ("characters", "lore"):
        rows = [_toml_entry(entry) for entry in draft.lore if entry.table == table]
        if rows:
            document[table] = rows
    header = [f"# Imported by storyteller from {one_line(origin)} ({draft.source}).",
              "# placement: where the original tool put each entry, kept for the record.",
              *(f"# {one_line(note)}" for note in draft.notes)]
    text = "\n".join(header) + "\n\n" + tomli_w.dumps(document, multiline_strings=True)
    return text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"


def _toml_entry(entry: LoreDraft) -> dict:
    row: dict = {"name": entry.name}
    if entry.aliases:
        row["aliases"] = entry.aliases
    if entry.secondary_keys:
        row |= {"secondary_keys": entry.secondary_keys, "selective": entry.selective,
                "selective_logic": entry.selective_logic}
    row["importance"] = entry.importance
    if entry.pinned:
        row["pinned"] = True
    row["text"] = entry.text
    placement = for_the_record(entry.placement)
    if placement:
        row["placement"] = placement
    return row
