"""Extraction: after a turn, a model lists the characters, locations, items and plot
facts the turn introduced or changed, as JSON constrained by a schema (llama.cpp turns
it into a grammar, so the output parses). It is still validated: a fact that breaks
the schema or names something the turn never mentions is rejected and logged, never
stored. Facts become notes: entries of their own (source "notes", with the turn that
wrote them), grown by later facts about the same name. The world's lore and the
player's entries are never changed by them (see take_notes)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storyteller.errors import ModelError
from storyteller.generation import Message, Narrator, SamplingOptions, complete
from storyteller.memory.entries import (
    NOTES,
    MemoryEntry,
    free_id,
    named_entry_id,
    with_name,
)
from storyteller.memory.lorebook import Lorebook
from storyteller.storage.transcript import Turn
from storyteller.text import normalize_name

log = logging.getLogger(__name__)

PROMPT_FILE = "extract.txt"
MAX_TOKENS = 400  # the schema caps 3 facts of at most ~100 tokens each
TURN_CHARS = 1500  # of the turn's text shown to the extractor
KNOWN_NAMES = 30  # names already known, listed so the model reuses them
ENTRY_CHARS = 600  # a merged entry's text is kept under this length
NOTES_SUFFIX = "-notes"  # the notes about a world or player entry: its id + this
NOT_NAMES = {"you", "i", "me", "player", "the player", "narrator", "the narrator", "he",
             "she", "they", "it", "we"}

Name = Annotated[str, Field(min_length=2, max_length=40)]


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["character", "location", "item", "plot"]
    name: Name
    aliases: list[Name] = Field(max_length=2)
    text: str = Field(min_length=8, max_length=160)
    importance: int = Field(ge=1, le=10)


class Facts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    facts: list[Fact] = Field(max_length=3)


FACTS_SCHEMA = Facts.model_json_schema()


@dataclass
class Extraction:
    facts: list[Fact] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why each rejected fact was rejected
    ms: float = 0.0
    cancelled: bool = False


class Extractor:
    def __init__(self, narrator: Narrator, prompts_dir: Path, seed: int | None = None):
        self.narrator = narrator
        self.instructions = (prompts_dir / PROMPT_FILE).read_text(encoding="utf-8").strip()
        self.seed = seed

    def extract(self, turn: Turn, known: list[MemoryEntry],
                cancel: threading.Event | None = None) -> Extraction:
        """The facts of a turn. `known` are the entries so far: their names are shown to
        the model (those the turn mentions first), and a fact may use the full name of
        a known entry the turn mentions by an alias ("Maren Holt" for "Maren")."""
        started = time.perf_counter()
        cancel = cancel or threading.Event()
        mentioned_ids = Lorebook(known).mentioned(f"{turn.input}\n{turn.output}")
        mentioned = [entry for entry in known if entry.id in mentioned_ids]
        names = [e.name for e in mentioned + [e for e in known if e not in mentioned] if e.name]
        try:
            text, _ = complete(self.narrator, self._prompt(turn, names),
                               self._options(turn), FACTS_SCHEMA, cancel)
            result = Extraction(cancelled=cancel.is_set())
            if not result.cancelled:
                result = validate(text, turn, {normalize_name(name) for entry in mentioned
                                               for name in entry.names})
        except (ModelError, ValueError, RuntimeError) as error:  # llama.cpp: n_ctx
            result = Extraction(rejected=[f"the extractor failed: {error}"])
        result.ms = (time.perf_counter() - started) * 1000
        for reason in result.rejected:
            log.warning("turn %d: extraction output skipped: %s", turn.number, reason)
        return result

    def _prompt(self, turn: Turn, known_names: list[str]):
        """The instructions and the turn, cut until the answer fits the context too."""
        story = f"The player: {turn.input}\nThe story: {turn.output}"[:TURN_CHARS]
        known = ", ".join(known_names[:KNOWN_NAMES]) or "none yet"
        while True:
            body = f"Names known so far: {known}\n\nThe latest turn:\n{story}\n\nAnswer in JSON."
            prompt = self.narrator.render([Message.of("system", self.instructions, "system"),
                                           Message.of("user", body, "input")])
            room = self.narrator.n_ctx - MAX_TOKENS
            if len(prompt) <= room or len(story) < 100:
                return prompt
            story = story[: int(len(story) * room / len(prompt) * 0.9)]

    def _options(self, turn: Turn) -> SamplingOptions:
        seed = (self.seed or 0) * 7919 + turn.number  # repeatable with --seed
        return SamplingOptions(temperature=0.2, top_p=0.9, top_k=40, repeat_penalty=1.0,
                               max_tokens=MAX_TOKENS, seed=seed % 2**31)


def validate(text: str, turn: Turn, also_mentioned: set[str] | None = None) -> Extraction:
    """Parse the model's answer; keep the facts about things the turn mentions (by
    name, or as one of the also_mentioned names)."""
    try:
        # strict=False: a raw newline inside a string is still a readable answer
        answer = Facts.model_validate(json.loads(text, strict=False))
    except (ValueError, ValidationError) as error:
        first = str(error).splitlines()[0][:160]
        return Extraction(rejected=[f"not valid facts JSON ({first}): {text[:200]!r}"])
    said = normalize_name(f"{turn.input} {turn.output}")
    also_mentioned = also_mentioned or set()

    def mentioned(name: str) -> bool:
        return name in also_mentioned or f" {name} " in f" {said} "

    result = Extraction()
    for fact in answer.facts:
        name = normalize_name(fact.name)
        if not name or name in NOT_NAMES:
            result.rejected.append(f"{fact.name!r} is not a name")
        elif not mentioned(name):
            result.rejected.append(f"{fact.name!r} is not mentioned in the turn")
        else:
            aliases = [a.strip() for a in fact.aliases if normalize_name(a) not in NOT_NAMES
                       and normalize_name(a) != name]
            result.facts.append(fact.model_copy(update={"name": fact.name.strip(),
                                                        "aliases": aliases}))
    return result


def take_notes(facts: list[Fact], entries: dict[str, MemoryEntry], turn: Turn,
               ) -> list[MemoryEntry]:
    """The notes a turn's facts write, one per entry (its last version), in order. Only
    notes are written: a fact about a world or player entry goes into a notes entry
    beside it, so the lore always reads as written and notes can be dropped as a group."""
    entries = dict(entries)
    written: dict[str, MemoryEntry] = {}
    for fact in facts:
        entry = merge(fact, entries, turn)
        if entry is not None:
            entries[entry.id] = written[entry.id] = entry
    return list(written.values())


def merge(fact: Fact, entries: dict[str, MemoryEntry], turn: Turn) -> MemoryEntry | None:
    """The notes entry this fact creates or grows, or None when it adds nothing. The fact
    is about the entry named by its name (or, failing that, one of its aliases the turn
    says of it): a note grows; a world or player entry gets a note beside it, with its
    id + NOTES_SUFFIX, its kind, name and aliases; an unknown name a new note."""
    said = f"{turn.input}\n{turn.output}"
    subject = _named(fact.name, entries)
    aliases = [a for a in fact.aliases if said_of(a, (fact.name, *(
        subject.names if subject else ())), said)]
    if subject is None:
        subject = next((found for a in aliases if (found := _named(a, entries))), None)
    if subject is not None and subject.source != NOTES:
        subject = entries.get(subject.id + NOTES_SUFFIX) or replace(
            subject, id=subject.id + NOTES_SUFFIX, text="", source=NOTES, pinned=False,
            selective=False, secondary_keys=())
    if subject is None:
        return MemoryEntry(id=_free_id(fact, entries), kind=fact.kind,
                           text=with_name(fact.name, fact.text), name=fact.name,
                           aliases=tuple(_new_aliases(aliases, (fact.name,), entries)),
                           turn=turn.number, importance=fact.importance, source=NOTES)
    sentence = with_name(subject.name, fact.text, subject.aliases)
    new_aliases = tuple(_new_aliases((fact.name, *aliases), subject.names, entries))
    new_text = normalize_name(sentence) not in normalize_name(subject.text)
    if not new_text and not new_aliases:
        return None
    text = subject.text if not new_text else (
        _grow(subject.text, sentence) if subject.text else sentence)
    return replace(subject, text=text, aliases=subject.aliases + new_aliases, turn=turn.number,
                   importance=max(subject.importance, fact.importance))


def _named(name: str, entries: dict[str, MemoryEntry]) -> MemoryEntry | None:
    """The entry called `name` (its name or an alias), a note before the lore it is about."""
    key = normalize_name(name)
    found = [entry for entry in entries.values() if entry.kind != "event"
             and key in {normalize_name(n) for n in entry.names}]
    return next((entry for entry in found if entry.source == NOTES), found[0] if found else None)


def _new_aliases(candidates, known: tuple[str, ...], entries: dict[str, MemoryEntry]):
    """The candidates that are neither names of this entry yet nor of another entry."""
    own = {normalize_name(n) for n in known}
    same = normalize_name(known[0]) if known else ""
    others = {normalize_name(n) for entry in entries.values()
              if normalize_name(entry.name) != same for n in entry.names}
    seen: set[str] = set()
    for alias in candidates:
        key = normalize_name(alias)
        if key and key not in own and key not in others and key not in seen:
            seen.add(key)
            yield alias


_ARTICLE = r"(?:(?:the|a|an)\s+)"
_NAMING = r"(?:also\s+)?(?:called|named|known\s+as|nicknamed|aka|alias)"


def said_of(alias: str, names: tuple[str, ...], text: str) -> bool:
    """Whether `text` gives `alias` as another name of one of `names`: written right
    beside it ("Tobias Wren the ferryman", "the ferryman Tobias Wren", "Maren Holt, the
    blacksmith"), joined by a naming word ("a woman called Orla", "Orla, known as the
    Gull") or in brackets ("Orla (the Gull)"). Merely appearing in the same turn, as
    another character or a place does, is not enough."""
    folded = " ".join(text.casefold().split())
    alias_pattern = _ARTICLE + "?" + _words(alias)
    for name in names:
        name_pattern = _ARTICLE + "?" + _words(name)
        forms = (rf"{name_pattern}\s+{alias_pattern}", rf"{alias_pattern}\s+{name_pattern}",
                 rf"{name_pattern},\s+{_ARTICLE}{_words(alias)}",
                 rf"{name_pattern},?\s+{_NAMING}\s+{alias_pattern}",
                 rf"{alias_pattern},?\s+{_NAMING}\s+{name_pattern}",
                 rf"{name_pattern}\s*\(\s*{alias_pattern}\s*\)",
                 rf"{alias_pattern}\s*\(\s*{name_pattern}\s*\)")
        if _words(name) and any(re.search(rf"(?<!\w){form}(?!\w)", folded) for form in forms):
            return True
    return False


def _words(name: str) -> str:
    """A name as a pattern: its words without a leading article, any spacing between."""
    words = name.casefold().split()
    if len(words) > 1 and words[0] in ("the", "a", "an"):
        words = words[1:]
    return r"\s+".join(re.escape(word) for word in words)


def _free_id(fact: Fact, entries: dict[str, MemoryEntry]) -> str:
    return free_id(named_entry_id(fact.kind, fact.name), entries)


def _grow(text: str, sentence: str) -> str:
    """Append a sentence on its own line; past ENTRY_CHARS, drop the oldest added lines
    but keep the first (what the entry is) and the newest."""
    head, *rest = [part for part in text.split("\n") if part]
    rest.append(sentence)
    while len(rest) > 1 and len(head) + sum(len(part) + 1 for part in rest) > ENTRY_CHARS:
        rest.pop(0)
    return "\n".join([head, *rest])
