"""Choosing what the narrator is reminded of: hybrid recall.

Three searches find candidates for a text (the player's input, or the scene the last
turns set):

- the lorebook: entries whose name or alias the text says (SillyTavern's World Info);
- the lexical index: BM25 over every entry and story passage (names and rare words);
- the vector index: the nearest entries in meaning (all-MiniLM-L6-v2, cosine).

Story passages are found as chunks but come back as whole turns (what the player did and
what the story told), so a turn's words reach the prompt together. The two ranked lists
are fused by reciprocal rank (RRF: 1 / (RRF_K + rank), summed; normalized so that first
in both is 1.0); a lorebook hit counts as first in both. RRF_K is 10, not the usual 60:
measured on two LoCoMo conversations at n_ctx 2048, 60 let candidates middling in both
lists outrank the top of either one (67% of the evidence in the prompt; 10: 72%). A
lexical rank weighs LEXICAL_WEIGHT times a vector rank: names and rare words are the
surer sign (BM25 alone finds more of LoCoMo's evidence than the nearest turns, 71% to
59% at 2048; the weight 1.5 took the two conversations from 72% to 74%). Then

    score = fused + RECENCY_WEIGHT * recency + IMPORTANCE_WEIGHT * importance / 10

with recency = RECENCY_DECAY ** (turns since the entry was written or last named) and
importance rated once, when the entry is written (Generative Agents, arXiv 2304.03442,
section 4.1): fused relevance decides, the rest only orders candidates alike.

Selection is redundancy-aware: a turn whose action only echoes the text searched for (an
earlier "where did I hide the key?") adds nothing the question does not say, so it comes
after every candidate that does; and a candidate whose words another, better one
already holds is left out. Measured on LoCoMo (bench/locomo.py), names and rare words
decide most questions about the distant past; a dense search alone misses them.

The short input rule stays: "open it" is also searched with the end of the last
narration (its vector is made in the background when the turn is written)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from storyteller.errors import MemoryIndexError
from storyteller.memory.entries import EVENT_IMPORTANCE, MemoryEntry
from storyteller.memory.lexical import query_words
from storyteller.memory.lorebook import Lorebook, Mentions
from storyteller.storage.transcript import Turn
from storyteller.text import split_sentences

if TYPE_CHECKING:
    from storyteller.memory.index import MemoryIndex

SEARCH_DEPTH = 40  # hits fetched from each index before fusing
EVENT_CHUNKS_PER_TURN = 3  # a turn is its action and one or two story chunks (entries.py)
RRF_K = 10  # reciprocal rank fusion's constant: the top ranks of each search weigh most
LEXICAL_WEIGHT = 1.5  # a lexical rank against a vector rank of the same place
KEYWORD_SCAN_TURNS = 3  # the scene: lore the last turns named
MIN_SIMILARITY = 0.2  # a vector hit less similar than this alone is noise, not a memory
STRONG_SIMILARITY = 0.45  # a vector hit this similar counts in full in the fusion
# An ordinary action is reminded of a past turn only for a word it names that the scene
# lacks and at most this many entries hold: a detail said in one action (its own entry and
# its passage's: two) or a few narrations ("the cress-seller"), not the everyday words
# every other turn has. Each memory more is read after Enter.
RARE_ENTRIES = 3
CONTEXT_WEIGHT = 0.7  # similarity to "input + last turn" counts 70% of similarity to input
CONTEXT_WORDS = 40  # of the last narration, its end: what "it" and "her" refer to
CONTEXT_MAX_INPUT_WORDS = 5  # inputs this short are also searched with the last turn
RECENCY_DECAY = 0.98  # per turn: a memory untouched for 34 turns has half its recency
RECENCY_WEIGHT = 0.05
IMPORTANCE_WEIGHT = 0.1
ECHO_SHARE = 0.7  # a turn whose action's words are this much the query's is an echo
ECHO_FACTOR = 0.25  # an echo's score is cut to this (it comes after what adds something)
REDUNDANT_SHARE = 0.85  # a candidate this much covered by a better one is left out
# Words that refer back whatever the sentence. "before", "back", "last", "again" and
# "once" do not ("before dawn", "the back room", "how long will it last"): in the
# ttft session they made 13 of 16 ordinary actions questions, each hundreds of tokens
# of memories read after Enter.
PAST_WORDS = {"remember", "recall", "earlier", "ago", "previously", "formerly", "yesterday"}
PAST_PHRASES = re.compile(r"\b(?:last (?:time|night|week|month|year)|back then|the other day"
                          r"|before that)\b")
QUESTION_STARTS = {"what", "where", "when", "who", "whom", "whose", "why", "how", "which",
                   "did", "do", "does", "was", "were", "is", "are", "have", "has", "had",
                   "can", "could", "remember", "recall"}


@dataclass(frozen=True)
class Recalled:
    """One memory as recall hands it on: an entry, or a whole past turn."""

    entry: MemoryEntry  # for a turn: its passage, kind "event", id "turn-N"
    score: float
    via: str  # "pinned", "keyword", "lexical", "vector" or "both"
    turn: Turn | None = None
    needed: bool = False  # an ordinary action asks for it (Recaller.needed_by_action)
    # for a turn an ordinary action needs for a rare word: the first sentence of its
    # narration holding that word (what the prompt shows of it, after the action)
    excerpt: str = ""

    @property
    def text(self) -> str:
        """The memory on one line (a turn: its action and its narration)."""
        if self.turn is not None:
            return f"{self.turn.input} {self.turn.output}"
        return " ".join(self.entry.text.split("\n"))

    def to_trace(self) -> dict:
        return {"id": self.entry.id, "kind": self.entry.kind, "text": self.text,
                "score": round(self.score, 4), "via": self.via}


@dataclass
class Recall:
    """What one turn is reminded of: pinned facts, then memories, best first."""

    pinned: list[Recalled] = field(default_factory=list)
    memories: list[Recalled] = field(default_factory=list)
    asks_about_the_past: bool = False  # a question: memories may take the older history's room
    notices: list[str] = field(default_factory=list)

    def trace(self) -> list[dict]:
        return [item.to_trace() for item in self.pinned + self.memories]


@dataclass
class RecallQuery:
    """One recall, with the memory's state as it was when the turn began."""

    entries: dict[str, MemoryEntry]
    removed: set[str]
    hidden: set[str]  # written by the turn being retold: they must not shape its telling
    lorebook: Lorebook
    turns: dict[int, Turn]  # the live turns by number
    recent: list[Turn]  # the history the prompt holds verbatim
    text: str  # what to search for
    now: int  # the turn being told
    exclude: set[str] = field(default_factory=set)  # shown elsewhere in the prompt already
    scene: str = ""  # the rest of the prompt's text (history, summary, block), for `needed`

    @property
    def oldest_shown(self) -> int:
        return self.recent[0].number if self.recent else self.now


def context_of(last_output: str) -> str:
    """The end of the last narration: what "it" and "her" in a short input refer to."""
    return " ".join(last_output.split()[-CONTEXT_WORDS:])


def wants_context(player_input: str) -> bool:
    """A short input is also searched with the end of the last turn."""
    return len(player_input.split()) <= CONTEXT_MAX_INPUT_WORDS


def asks_about_the_past(text: str) -> bool:
    """A question, or an action that refers back ("remember the ferryman"): it may need
    memories more than the older turns of the history."""
    words = re.findall(r"\w+", text.casefold())
    return "?" in text or bool(words) and (words[0] in QUESTION_STARTS
                                           or bool(PAST_WORDS & set(words))
                                           or bool(PAST_PHRASES.search(text.casefold())))


def score(entry: MemoryEntry, relevance: float, last_mention: int, now: int) -> float:
    turns_since = max(0, now - max(entry.turn, last_mention))
    recency = RECENCY_DECAY ** turns_since
    return relevance + RECENCY_WEIGHT * recency + IMPORTANCE_WEIGHT * entry.importance / 10


class Recaller:
    def __init__(self, index: MemoryIndex, mentions: Mentions):
        self.index = index
        self.mentions = mentions

    # -- what a text asks for ------------------------------------------------------

    def recall(self, query: RecallQuery, context_vector=None) -> Recall:
        """Pinned facts, then every candidate for the query's text, best first."""
        recall = Recall(pinned=[Recalled(e, 1.0, "pinned") for e in query.entries.values()
                                if e.pinned],
                        asks_about_the_past=asks_about_the_past(query.text))
        named = query.lorebook.mentioned(query.text) - query.hidden
        try:
            recall.memories = self.search(query, named, context_vector)
            if not recall.asks_about_the_past:
                recall.memories = self.needed_by_action(query, recall)
        except MemoryIndexError as error:  # the index is down: remember by name only
            recall.memories = [replace(item, needed=True) for item in
                               self.search(query, named, None, indexes=False)]
            recall.notices.append(f"Memory search failed, names only this turn: {error}")
        return recall

    def needed_by_action(self, query: RecallQuery, recall: Recall) -> list[Recalled]:
        """recall.memories, marked with what an ordinary action needs: the lore it names,
        and the past turns holding a rare word it names that the prompt lacks; never a
        turn it only repeats (the times it was done before add nothing to this one)."""
        scene = "\n".join([query.scene, *(item.text for item in recall.pinned)])
        rare = self.index.words.rare_words(query.text, scene, RARE_ENTRIES)
        holding = set(self._lexical(replace(query, text=" ".join(rare)))) if rare else set()
        asked = _content_words(query.text)
        marked = []
        for item in recall.memories:
            by_word = item.entry.id in holding and not _echoes(item, asked)
            marked.append(replace(item, needed=item.via == "keyword" or by_word,
                                  excerpt=self._excerpt(item, rare) if by_word else ""))
        return marked

    def _excerpt(self, item: Recalled, words: list[str]) -> str:
        """The first sentence of a past turn's narration that holds one of `words`."""
        if item.turn is None:
            return ""
        sentences = split_sentences(item.turn.output)
        holds = self.index.words.naming(sentences, words)
        return next((sentence for sentence, held in zip(sentences, holds, strict=True)
                     if held), "")

    def scene(self, query: RecallQuery, scene_vector=None) -> list[Recalled]:
        """What the last turns are about, for the recalled block that stays in the prompt
        while the scene lasts: the lore they named, then what resembles them."""
        scanned = "\n".join(f"{t.input}\n{t.output}" for t in query.recent[-KEYWORD_SCAN_TURNS:])
        named = query.lorebook.mentioned(scanned) - query.hidden
        return self.search(query, named, scene_vector, embed_text=False)

    def search(self, query: RecallQuery, named: set[str], context_vector=None,
               embed_text: bool = True, indexes: bool = True) -> list[Recalled]:
        ranked = {"keyword": [key for key in sorted(named)
                              if self._usable(query, key, "lore", 0)]}
        similarity: dict[str, float] = {}
        if indexes:
            ranked["lexical"] = self._lexical(query)
            ranked["vector"] = self._vector(query, context_vector, embed_text, similarity)
        fused = _fuse(ranked, similarity)
        found = [self._recalled(query, key, relevance, ranked)
                 for key, relevance in fused.items()]
        return select(query.text, [item for item in found if item is not None])

    # -- the two indexes ---------------------------------------------------------

    def _lexical(self, query: RecallQuery) -> list[str]:
        hits = self.index.words.search(query.text, SEARCH_DEPTH + self._recent_events(query))
        return _keys((entry_id, kind, turn) for entry_id, kind, turn, _ in hits
                     if self._usable(query, entry_id, kind, turn))

    def _vector(self, query: RecallQuery, context_vector, embed_text: bool,
                similarity: dict[str, float]) -> list[str]:
        vectors = []
        if embed_text:
            vectors.append((1.0, self.index.vectors.embed([query.text])[0]))
        if context_vector is not None:
            if vectors:  # the input and the last narration's end together, discounted
                both = np.asarray(vectors[0][1]) + np.asarray(context_vector)
                vectors.append((CONTEXT_WEIGHT, both / (np.linalg.norm(both) or 1.0)))
            else:
                vectors.append((1.0, context_vector))
        if not vectors:
            return []
        depth = SEARCH_DEPTH + self._recent_events(query)
        results = self.index.vectors.query([vector for _, vector in vectors], depth)
        best: dict[str, float] = {}
        for (weight, _), hits in zip(vectors, results, strict=True):
            for hit in hits:
                entry = hit.entry
                if not self._usable(query, entry.id, entry.kind, entry.turn):
                    continue
                key = _key(entry.id, entry.kind, entry.turn)
                best[key] = max(best.get(key, -1.0), weight * hit.similarity)
        similarity.update(best)
        return [key for key, value in sorted(best.items(), key=lambda kv: -kv[1])
                if value >= MIN_SIMILARITY]

    def _recent_events(self, query: RecallQuery) -> int:
        """Room for the passages of the turns the prompt shows verbatim: the index finds
        them too, and they are dropped after the query. (A `where` filter would drop them
        first but made a query at 10k memories 10-30 times slower.)"""
        return EVENT_CHUNKS_PER_TURN * len(query.recent)

    def _usable(self, query: RecallQuery, entry_id: str, kind: str, turn: int) -> bool:
        if entry_id in query.hidden or entry_id in query.removed:
            return False
        if kind == "event":
            return (turn < query.oldest_shown and turn in query.turns
                    and f"turn-{turn}" not in query.exclude)
        entry = query.entries.get(entry_id)
        return entry is not None and not entry.pinned and entry_id not in query.exclude

    def _recalled(self, query: RecallQuery, key: str, relevance: float,
                  ranked: dict[str, list[str]]) -> Recalled | None:
        sources = [name for name, keys in ranked.items() if key in keys]
        via = "keyword" if "keyword" in sources else ("both" if len(sources) == 2
                                                      else sources[0])
        if key.startswith("turn-"):
            turn = query.turns[int(key.removeprefix("turn-"))]
            entry = MemoryEntry(id=key, kind="event", text=f"{turn.input}\n{turn.output}",
                                turn=turn.number, importance=EVENT_IMPORTANCE)
        else:
            turn, entry = None, query.entries[key]
        return Recalled(entry, score(entry, relevance, self.mentions.last(entry.id), query.now),
                        via, turn)


def _key(entry_id: str, kind: str, turn: int) -> str:
    """Story passages count as their whole turn."""
    return f"turn-{turn}" if kind == "event" else entry_id


def _keys(hits) -> list[str]:
    """Ranked keys, each once, in the order first found."""
    return list(dict.fromkeys(_key(*hit) for hit in hits))


def _fuse(ranked: dict[str, list[str]], similarity: dict[str, float]) -> dict[str, float]:
    """Reciprocal rank fusion of the lexical (weighted) and vector ranks, capped at 1.0
    (first in both); a lorebook hit counts as first in both. A vector hit's share shrinks with its
    similarity under STRONG_SIMILARITY: the nearest of nothing alike is still first."""
    best = 2 / (RRF_K + 1)
    fused: dict[str, float] = {}
    for name, keys in ranked.items():
        for rank, key in enumerate(keys, start=1):
            share = best if name == "keyword" else 1 / (RRF_K + rank)
            if name == "vector":
                share *= min(1.0, similarity[key] / STRONG_SIMILARITY)
            elif name == "lexical":
                share *= LEXICAL_WEIGHT
            fused[key] = fused.get(key, 0.0) + share / best
    return {key: min(value, 1.0) for key, value in fused.items()}


def _content_words(text: str) -> set[str]:
    return set(query_words(text))


def _echoes(item: Recalled, asked: set[str]) -> bool:
    """A past turn whose action is mostly the asking text's words: it repeats the text."""
    if item.turn is None:
        return False
    said = _content_words(item.turn.input)
    return bool(said) and len(said & asked) >= ECHO_SHARE * len(said)


def select(text: str, found: list[Recalled]) -> list[Recalled]:
    """Best first; an echo of the text after what adds to it; nothing another, better
    candidate already says."""
    asked = _content_words(text)

    def adjusted(item: Recalled) -> float:
        return item.score * ECHO_FACTOR if _echoes(item, asked) else item.score

    kept: list[Recalled] = []
    held: list[set[str]] = []
    for item in sorted(found, key=adjusted, reverse=True):
        words = _content_words(item.text)
        if words and any(len(words & other) >= REDUNDANT_SHARE * len(words) for other in held):
            continue
        kept.append(item)
        held.append(words)
    return kept
