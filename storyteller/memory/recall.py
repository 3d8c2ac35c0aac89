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

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from storyteller.errors import MemoryIndexError
from storyteller.memory.entries import MemoryEntry
from storyteller.memory.lorebook import Lorebook, Mentions
from storyteller.storage.transcript import Turn

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


@dataclass(frozen=True)
class Recalled:
    entry: MemoryEntry
    score: float
    via: str  # "pinned", "keyword" or "vector"

    @property
    def text(self) -> str:
        """The entry's text on one line (merged entries keep one fact a line)."""
        return " ".join(self.entry.text.split("\n"))

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


@dataclass
class RecallQuery:
    """One recall, with the memory's state as it was when the turn began."""

    entries: dict[str, MemoryEntry]
    removed: set[str]
    hidden: set[str]  # written by the turn being retold: they must not shape its telling
    lorebook: Lorebook
    recent: list[Turn]  # the history the prompt holds verbatim
    player_input: str
    now: int  # the turn being told

    @property
    def wants_context(self) -> bool:
        return wants_context(self.player_input)


class Recaller:
    """Pinned facts, lore named in the input, the nearest entries, then lore the last
    few turns named if there is room: scored, and fitted to the token caps."""

    def __init__(self, store: MemoryStore, count_tokens: Callable[[str], int] | None,
                 mentions: Mentions, memory_cap: int, pinned_cap: int):
        self.store = store
        self.count_tokens = count_tokens
        self.mentions = mentions
        self.memory_cap = memory_cap
        self.pinned_cap = pinned_cap

    def recall(self, query: RecallQuery, context_vector=None) -> Recall:
        entries, now, recent = query.entries, query.now, query.recent
        named = query.lorebook.mentioned(query.player_input) - query.hidden
        scanned = "\n".join(f"{t.input}\n{t.output}" for t in recent[-KEYWORD_SCAN_TURNS:])
        named_lately = query.lorebook.mentioned(scanned) - query.hidden - named
        candidates = {i: Recalled(entries[i], self._score(entries[i], KEYWORD_RELEVANCE, now),
                                  "keyword") for i in named}
        candidates |= {i: Recalled(entries[i], self._score(entries[i], RECENT_NAME_RELEVANCE,
                                                           now), "keyword")
                       for i in named_lately}
        similarity: dict[str, float] = {}
        oldest_shown = recent[0].number if recent else now
        problem = None
        try:
            found = nearest(self.store, query.player_input, vector_candidates(len(recent)),
                            context_vector)
        except MemoryIndexError as error:  # the index is down: remember by name only
            found, problem = {}, f"Memory search failed, names only this turn: {error}"
        for entry_id, (hit, relevance) in found.items():
            if (entry_id in query.hidden or entry_id in query.removed
                    or shown_verbatim(hit, oldest_shown)):
                continue
            similarity[entry_id] = relevance
            entry = entries.get(entry_id, hit)
            floor = RECENT_NAME_RELEVANCE if entry_id in named_lately else MIN_RELEVANCE
            if entry_id not in named and relevance > floor:
                candidates[entry_id] = Recalled(entry, self._score(entry, relevance, now),
                                                "vector")
        recall = self._select(entries, candidates, similarity, now)
        if problem:
            recall.notices.append(problem)
        return recall

    def _score(self, entry: MemoryEntry, relevance: float, now: int) -> float:
        return score(entry, relevance, self.mentions.last(entry.id), now)

    def _select(self, entries: dict[str, MemoryEntry], candidates: dict[str, Recalled],
                similarity: dict[str, float], now: int) -> Recall:
        recall = Recall()
        # Pinned facts keep their order (the order they were written), so the prompt's
        # front stays byte-identical from turn to turn.
        pinned = [Recalled(entry, self._score(entry, similarity.get(entry.id, 0.0), now),
                           "pinned") for entry in entries.values() if entry.pinned]
        used = 0
        for item in pinned:
            tokens = self.count_tokens(item.text) + 2
            if used + tokens <= self.pinned_cap:
                recall.pinned.append(item)
                used += tokens
        if len(recall.pinned) < len(pinned):
            recall.notices.append(f"{len(pinned) - len(recall.pinned)} pinned facts did not "
                                  "fit the prompt; /memory lists them, /forget ID drops one.")
        unpinned = [item for item in candidates.values() if not item.entry.pinned]
        recall.memories, _ = fit(merge_repeated_actions(unpinned), self.count_tokens,
                                 self.memory_cap)
        return recall
