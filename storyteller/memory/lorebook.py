"""Keyword activation: which entries a text names, by name or alias (a lorebook, as in
KoboldAI's and SillyTavern's World Info), and when the story last named each."""

from __future__ import annotations

import re
from collections.abc import Iterable

from storyteller.memory.entries import MemoryEntry
from storyteller.storage.transcript import Turn
from storyteller.text import normalize_name

MIN_NAME_LENGTH = 3  # shorter names and aliases would fire on every other word
TITLES = {"old", "young", "little", "big", "mr", "mrs", "ms", "miss", "dr", "doctor", "sir",
          "lady", "lord", "king", "queen", "prince", "princess", "captain", "elder", "father",
          "mother", "brother", "sister", "master", "mistress", "lieutenant", "sergeant",
          "officer", "professor", "saint", "aunt", "uncle", "madame", "don"}


class Lorebook:
    """Finds the entries whose name or an alias appears in a text (whole words, any
    case, with or without a leading article). A character is also found by the first
    word of a longer name after any title ("Tobias" for "Tobias Wren", "Lena" for
    "Dr. Lena Voss"). A selective entry with secondary keys found so is kept only if
    its secondary keys pass its logic on the same text (secondary_keys_pass)."""

    def __init__(self, entries: Iterable[MemoryEntry]):
        self._ids: dict[str, set[str]] = {}
        self._gates: dict[str, tuple[str, tuple[str, ...]]] = {}
        for entry in entries:
            for key in _keys(entry):
                self._ids.setdefault(key, set()).add(entry.id)
            if entry.selective and entry.secondary_keys:
                self._gates[entry.id] = (entry.selective_logic,
                                         tuple(normalize_name(k) for k in entry.secondary_keys))
        keys = sorted(self._ids, key=len, reverse=True)
        self._pattern = (re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keys) + r")\b")
                         if keys else None)

    def mentioned(self, text: str) -> set[str]:
        if self._pattern is None:
            return set()
        normalized = normalize_name(text)
        found: set[str] = set()
        for match in self._pattern.finditer(normalized):
            found |= self._ids[match.group(0)]
        return {entry_id for entry_id in found if entry_id not in self._gates
                or secondary_keys_pass(*self._gates[entry_id], normalized)}


def secondary_keys_pass(logic: str, keys: tuple[str, ...], normalized_text: str) -> bool:
    """SillyTavern's selectiveLogic (world-info.js), over secondary keys and a text both
    already normalized (normalize_name); a key matches as whole words, and a key that
    normalizes to nothing never matches. AND ANY: one key is present; NOT ALL: not every
    key is; NOT ANY: none is; AND ALL: every key is."""
    padded = f" {normalized_text} "
    present = [bool(key) and f" {key} " in padded for key in keys]
    if logic == "AND ANY":
        return any(present)
    if logic == "NOT ALL":
        return not all(present)
    if logic == "NOT ANY":
        return not any(present)
    return all(present)  # AND ALL


class Mentions:
    """The turn in which the story last named each entry: recency counts from there."""

    def __init__(self):
        self._last: dict[str, int] = {}

    def note(self, lorebook: Lorebook, turn: Turn) -> None:
        for entry_id in lorebook.mentioned(f"{turn.input}\n{turn.output}"):
            self._last[entry_id] = turn.number

    def last(self, entry_id: str) -> int:
        return self._last.get(entry_id, 0)

    def forget_from(self, number: int) -> None:
        self._last = {entry_id: turn for entry_id, turn in self._last.items() if turn < number}


def _keys(entry: MemoryEntry) -> set[str]:
    keys = {normalize_name(name) for name in entry.names}
    if entry.kind == "character":
        keys |= {_first_name(key) for key in list(keys) if " " in key}
    return {key for key in keys if len(key) >= MIN_NAME_LENGTH}


def _first_name(name: str) -> str:
    """'dr lena voss' -> 'lena'; 'elder corwin' -> 'corwin'."""
    words = name.split()
    while len(words) > 1 and words[0] in TITLES:
        words = words[1:]
    return words[0]
