"""Choosing what the narrator is reminded of: keyword activation, scoring, fitting.

    score = relevance + RECENCY_WEIGHT * recency + IMPORTANCE_WEIGHT * importance / 10

relevance is KEYWORD_RELEVANCE when the entry's name or an alias is in the player's
input (a lorebook), RECENT_NAME_RELEVANCE (or its similarity, if higher) when it is only
in the last few turns (it comes if there is room), else its cosine similarity with the
query;
recency is RECENCY_DECAY ** (turns since the entry was last written or mentioned);
importance is rated 1-10 once, when the entry is written (Generative Agents, arXiv
2304.03442, section 4.1). Pinned entries are always included.

The query is the player input; a short input ("open it") is also searched with the end
of the last turn, for the letter the last turn was about: that second query is the sum
of the input's and the narration end's unit vectors, and both are searched in one
Chroma call. The narration's end is embedded in the background when its turn is
written, so a turn embeds only its input (one short text: about 11 ms, where embedding
"input + narration" too took 19). A hit's similarity is the better of the two, the
second discounted by CONTEXT_WEIGHT: otherwise the last narration decides the search,
and old turns that resemble it crowd out what the player asked about. A longer input
says what it is about by itself: adding the narration there cost a third of long-range
recall in the coherence benchmark (a small model's turns all look alike, so its
narration matched every old turn better than the one asked about).
Relevance dominates the score on purpose: the recent turns are in the prompt verbatim
already, so recency and importance only order memories of similar relevance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from storyteller.context.prompt import PromptMemory
from storyteller.memory.entries import MemoryEntry, normalize_name

if TYPE_CHECKING:
    from storyteller.memory.store import MemoryStore

KEYWORD_SCAN_TURNS = 3  # keyword activation looks at the input and this many last turns
VECTOR_CANDIDATES = 12  # nearest entries fetched from Chroma before scoring
EVENT_CHUNKS_PER_TURN = 3  # a turn is its action and one or two story chunks (entries.py)
MIN_RELEVANCE = 0.25  # a vector hit less similar than this is noise, not a memory
KEYWORD_RELEVANCE = 1.0
# A name only the story (not the player) said lately: the entry comes along when there
# is room left after everything the search found relevant. At 1.0 (and even at 0.3), a
# small model that names the world's people in every turn filled the memory share with
# their lore, and a debt asked about 160 turns later was left out.
RECENT_NAME_RELEVANCE = 0.0
CONTEXT_WEIGHT = 0.7  # similarity to "input + last turn" counts 70% of similarity to input
CONTEXT_WORDS = 40  # of the last narration, its end: what "it" and "her" refer to
CONTEXT_MAX_INPUT_WORDS = 5  # inputs this short are also searched with the last turn
RECENCY_DECAY = 0.98  # per turn: a memory untouched for 34 turns has half its recency
RECENCY_WEIGHT = 0.1
IMPORTANCE_WEIGHT = 0.2
MIN_NAME_LENGTH = 3  # shorter names and aliases would fire on every other word
TITLES = {"old", "young", "little", "big", "mr", "mrs", "ms", "miss", "dr", "doctor", "sir",
          "lady", "lord", "king", "queen", "prince", "princess", "captain", "elder", "father",
          "mother", "brother", "sister", "master", "mistress", "lieutenant", "sergeant",
          "officer", "professor", "saint", "aunt", "uncle", "madame", "don"}


@dataclass(frozen=True)
class Recalled:
    entry: MemoryEntry
    score: float
    via: str  # "pinned", "keyword" or "vector"

    @property
    def text(self) -> str:
        """The entry's text on one line (merged entries keep one fact a line)."""
        return " ".join(self.entry.text.split("\n"))

    def to_prompt(self) -> PromptMemory:
        return PromptMemory(self.entry.id, self.entry.kind, self.text, self.score)

    def to_trace(self) -> dict:
        return {"id": self.entry.id, "kind": self.entry.kind, "text": self.text,
                "score": round(self.score, 4), "via": self.via}


@dataclass
class Recall:
    """What one turn is reminded of: pinned facts, then memories, best first."""

    pinned: list[Recalled] = field(default_factory=list)
    memories: list[Recalled] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def trace(self) -> list[dict]:
        return [item.to_trace() for item in self.pinned + self.memories]


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


def vector_candidates(recent_turns: int) -> int:
    """How many nearest entries to fetch: VECTOR_CANDIDATES, plus room for the events of
    the turns the prompt shows verbatim, which are dropped after the query. (A Chroma
    `where` filter would drop them, but it made a query at 10k memories 10-30 times
    slower: filtered queries scan, plain ones walk the HNSW graph.)"""
    return VECTOR_CANDIDATES + EVENT_CHUNKS_PER_TURN * recent_turns


def shown_verbatim(entry: MemoryEntry, oldest_shown: int) -> bool:
    """An event of a turn the prompt already holds as history."""
    return entry.kind == "event" and entry.turn >= oldest_shown


def context_of(last_output: str) -> str:
    """The end of the last narration: what "it" and "her" in a short input refer to."""
    return " ".join(last_output.split()[-CONTEXT_WORDS:])


def wants_context(player_input: str) -> bool:
    """A short input is also searched with the end of the last turn."""
    return len(player_input.split()) <= CONTEXT_MAX_INPUT_WORDS


def nearest(store: MemoryStore, player_input: str, n: int, context_vector=None,
            ) -> dict[str, tuple[MemoryEntry, float]]:
    """Entries near the input (and, given the last narration end's embedding, near both
    together, discounted), with their relevance: one embedding, one Chroma query."""
    input_vector = store.embed([player_input])[0]
    queries = [input_vector]
    if context_vector is not None:
        both = np.asarray(input_vector) + np.asarray(context_vector)
        queries.append(both / (np.linalg.norm(both) or 1.0))
    found: dict[str, tuple[MemoryEntry, float]] = {}
    for weight, hits in zip((1.0, CONTEXT_WEIGHT), store.query(queries, n), strict=False):
        for hit in hits:
            relevance = weight * hit.similarity
            if relevance > found.get(hit.entry.id, (None, -1.0))[1]:
                found[hit.entry.id] = (hit.entry, relevance)
    return found


def score(entry: MemoryEntry, relevance: float, last_mention: int, now: int) -> float:
    turns_since = max(0, now - max(entry.turn, last_mention))
    recency = RECENCY_DECAY ** turns_since
    return relevance + RECENCY_WEIGHT * recency + IMPORTANCE_WEIGHT * entry.importance / 10


def merge_repeated_actions(items: list[Recalled]) -> list[Recalled]:
    """A turn's action chunk, when its story chunk that starts with the same words was
    found too, adds only a second copy of the action to the prompt: the story chunk
    stays, with the better score of the two."""
    kept = {item.entry.id: item for item in items}
    for action in items:
        story = next((item for item in items if item.entry.kind == action.entry.kind == "event"
                      and item.entry.id != action.entry.id
                      and item.entry.turn == action.entry.turn
                      and item.entry.text.startswith(action.entry.text)), None)
        if story is not None and story.entry.id in kept:
            del kept[action.entry.id]
            kept[story.entry.id] = replace(kept[story.entry.id],
                                           score=max(kept[story.entry.id].score, action.score))
    return list(kept.values())


def fit(items: list[Recalled], count_tokens: Callable[[str], int], cap: int,
        ) -> tuple[list[Recalled], int]:
    """The best items whose texts fit in cap tokens, best first; and how many did not."""
    kept, used = [], 0
    for item in sorted(items, key=lambda recalled: recalled.score, reverse=True):
        tokens = count_tokens(item.text) + 2  # "- " and the newline
        if used + tokens <= cap:
            kept.append(item)
            used += tokens
    return kept, len(items) - len(kept)
