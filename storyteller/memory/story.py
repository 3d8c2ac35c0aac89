"""StoryMemory: what a campaign remembers, written after each turn and recalled before
the next.

Sources of truth: the world file (lore), memories.jsonl (extracted facts, pins,
forgets) and the transcript (events). The Chroma index is derived from them: opened
on a campaign, it is rebuilt when it is missing, made with another embedding model,
or does not hold what the sources say.

After a turn is saved, a background thread indexes the turn's events and runs the
extractor; the next recall (or undo, or close) waits for it first. Its whole time
(indexing and extraction) is the turn's `extract` timing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from storyteller.campaign import Campaign, CampaignError, Turn
from storyteller.context.world import World
from storyteller.engine.memory_view import MemoryEntryNotFound  # one error for the browser
from storyteller.memory.entries import (
    NAMED_KINDS,
    MemoryEntry,
    event_entries,
    short_hash,
    world_entries,
)
from storyteller.memory.journal import MemoryJournal
from storyteller.memory.retrieve import (
    KEYWORD_RELEVANCE,
    KEYWORD_SCAN_TURNS,
    MIN_RELEVANCE,
    RECENT_NAME_RELEVANCE,
    Lorebook,
    Recall,
    Recalled,
    context_of,
    fit,
    merge_repeated_actions,
    nearest,
    score,
    shown_verbatim,
    vector_candidates,
    wants_context,
)

if TYPE_CHECKING:
    from storyteller.memory.extract import Extractor
    from storyteller.memory.store import MemoryStore

log = logging.getLogger(__name__)

# Retrieved memories come after the newest turn, so the model reads them anew every turn:
# each token here is paid in time to first token on every turn (about 4 ms a token for
# the 135M model on 2 cores). A tenth of the context holds four to six memories; in the
# coherence benchmark every fact asked about ranked in the first three. (At an eighth,
# TTFT at turn 200 was 1.76 times turn 10's, where the story had less to recall.)
MEMORY_TOKEN_CAP = 256
MEMORY_CONTEXT_FRACTION = 10  # at most n_ctx // 10 tokens of memories
PINNED_TOKEN_CAP = 256
PIN_IMPORTANCE = 10

Progress = Callable[[int], None]


class StoryMemory:
    def __init__(self, campaign: Campaign, world: World, store: MemoryStore,
                 extractor: Extractor | None, count_tokens: Callable[[str], int] | None = None,
                 n_ctx: int = 2048):
        """count_tokens (the narrator's tokenizer) is needed by recall only: a memory
        opened to reindex has none."""
        self.campaign = campaign
        self.store = store
        self.extractor = extractor
        self.count_tokens = count_tokens
        self.memory_cap = min(MEMORY_TOKEN_CAP, n_ctx // MEMORY_CONTEXT_FRACTION)
        self.pinned_cap = min(PINNED_TOKEN_CAP, n_ctx // 8)
        self.journal = MemoryJournal(campaign.path)
        self._world = world_entries(world.lore)
        self._lock = threading.RLock()  # guards the journal, the state and the lorebook
        self._worker: threading.Thread | None = None
        self._worker_turn = 0
        self._cancel = threading.Event()
        self._write_ms: dict[int, float] = {}  # per turn: its background memory writing
        self._problems: list[str] = []  # from the background, shown with the next reply
        self._last_mention: dict[str, int] = {}
        self._last_context: tuple[str, object] = ("", None)  # a narration end, embedded
        self._closed = False
        self._refresh()
        for turn in campaign.turns:
            self._note_mentions(turn)

    @classmethod
    def open(cls, campaign: Campaign, world: World, memory_url: str | None,
             extractor: Extractor | None, count_tokens: Callable[[str], int],
             n_ctx: int, embedder=None) -> StoryMemory:
        """Open the campaign's index (rebuilding it if it is stale) and catch up with a
        last turn whose extraction was cut short."""
        from storyteller.memory.embedder import shared_embedder
        from storyteller.memory.store import MemoryStore

        embedder = embedder or shared_embedder()
        embedder.warm_up()
        store = MemoryStore.open(campaign.path, memory_url, embedder)
        memory = cls(campaign, world, store, extractor, count_tokens, n_ctx)
        if memory.index_is_stale():
            memory.reindex()
        last = campaign.turns[-1] if campaign.turns else None
        if extractor and last and last.number not in memory.state.extracted:
            memory._start_worker(last, index_events=False)
        return memory

    # -- state --------------------------------------------------------------

    def _refresh(self) -> None:
        """Replay the journal over the world's lore; rebuild the keyword index."""
        self.state = self.journal.replay(self._world)
        self.lorebook = Lorebook(self.state.entries.values())

    def _note_mentions(self, turn: Turn) -> None:
        for entry_id in self.lorebook.mentioned(f"{turn.input}\n{turn.output}"):
            self._last_mention[entry_id] = turn.number

    def entries(self, kind: str | None = None) -> list[MemoryEntry]:
        """Every entry (of one kind): lore, extracted facts, pins; "event" lists the
        story passages."""
        if kind == "event":
            return self.live_events()
        with self._lock:
            return [e for e in self.state.entries.values() if kind in (None, e.kind)]

    def live_events(self) -> list[MemoryEntry]:
        return [event for turn in self.campaign.turns for event in event_entries(turn)
                if event.id not in self.state.removed]

    def index_is_stale(self) -> bool:
        """Whether the index misses entries: deleted, new, made with another embedding
        model (the store then starts empty), or cut short by a crash."""
        return self.store.count() != len(self.state.entries) + len(self.live_events())

    def reindex(self, progress: Progress | None = None, total: Callable[[int], None] | None
                = None) -> int:
        """Rebuild the index from the world, the journal and the transcript (no model
        call). Returns the number of entries indexed."""
        self.wait()
        with self._lock:
            items = list(self.state.entries.values()) + self.live_events()
            if total:
                total(len(items))
            self.store.reset()
            self.store.upsert(items, progress)
            return len(items)

    # -- writing ------------------------------------------------------------

    def record_turn(self, turn: Turn) -> None:
        """After a turn is saved: index its events and extract its facts, in the
        background."""
        self.wait()
        with self._lock:
            self._note_mentions(turn)
            if not self._closed:  # after close (quit mid-turn) the next open catches up
                self._start_worker(turn, index_events=True)

    def _start_worker(self, turn: Turn, index_events: bool) -> None:
        self._cancel = threading.Event()
        self._worker_turn = turn.number
        self._worker = threading.Thread(target=self._write_turn, name=f"memory-turn-{turn.number}",
                                        args=(turn, index_events, self._cancel))
        self._worker.start()

    def _write_turn(self, turn: Turn, index_events: bool, cancel: threading.Event) -> None:
        started = time.perf_counter()
        try:
            if index_events:
                self.store.upsert([event for event in event_entries(turn)
                                   if event.id not in self.state.removed])
                self.context_vector(turn.output)  # now, not while the next turn waits
            if self.extractor is not None and not cancel.is_set():
                self._extract(turn, cancel)
        except CampaignError as error:  # the index or the journal failed: say so, go on
            log.warning("turn %d: memory not written: %s", turn.number, error)
            self._problems.append(f"Memory: {error}")
        except Exception as error:  # a bug here must never take the game down
            log.exception("turn %d: memory writer failed", turn.number)
            self._problems.append(f"Memory: turn {turn.number} was not remembered ({error}).")
        self._write_ms[turn.number] = (time.perf_counter() - started) * 1000

    def _extract(self, turn: Turn, cancel: threading.Event) -> None:
        from storyteller.memory.extract import merge

        result = self.extractor.extract(turn, self.entries(), cancel)
        if result.cancelled:
            return
        with self._lock:
            written = []
            for fact in result.facts:
                entry = merge(fact, self.state.entries, turn.number)
                if entry is not None:
                    self.journal.put(entry, turn.number, new=entry.id not in self.state.entries)
                    self.state.entries[entry.id] = entry
                    written.append(entry)
            self.journal.write("extracted", turn.number, facts=len(result.facts),
                               rejected=len(result.rejected), ms=round(result.ms, 1))
            self._refresh()
            self._note_mentions(turn)
        self.store.upsert(written)

    def undo_turn(self, number: int) -> None:
        """Take back what turn `number` wrote: its events, extracted facts and changes."""
        if self._worker_turn == number:
            self._cancel.set()
        self.wait()
        with self._lock:
            touched = [entry_id for entry_id, turn in self.state.written_by.items()
                       if turn == number]
            self.journal.write("undo", number)
            self._refresh()
            restored = [self.state.entries[i] for i in touched if i in self.state.entries]
            self.store.delete([i for i in touched if i not in self.state.entries])
            self.store.upsert(restored)
            self.store.delete_turn_events(number)

    def remember(self, text: str) -> tuple[MemoryEntry, bool]:
        """Pin a fact; returns the entry and whether it is new."""
        entry_id = f"pin-{short_hash(text.casefold())}"
        with self._lock:
            if entry_id in self.state.entries:
                return self.state.entries[entry_id], False
            last = self.campaign.turns[-1].number if self.campaign.turns else 0
            entry = MemoryEntry(id=entry_id, kind="plot", text=text, turn=last,
                                importance=PIN_IMPORTANCE, pinned=True, source="player")
            self.journal.put(entry, None, new=True)
            self._refresh()
        self.store.upsert([entry])
        return entry, True

    def search(self, query: str, limit: int = 50) -> list[MemoryEntry]:
        """Entries named in the query, then the nearest in meaning, best first."""
        with self._lock:
            entries = dict(self.state.entries)
            named = [entries[i] for i in self.lorebook.mentioned(query)]
        nearest_first = sorted(nearest(self.store, query, limit).values(),
                               key=lambda found: found[1], reverse=True)
        found = named + [entries.get(hit.id, hit) for hit, _ in nearest_first
                         if hit.id not in {e.id for e in named}]
        return found[:limit]

    def update(self, entry_id: str, text: str) -> MemoryEntry:
        """Replace an entry's text (a player's edit: no turn's undo takes it back)."""
        return self._edit(entry_id, text=text.strip())

    def set_pinned(self, entry_id: str, pinned: bool) -> MemoryEntry:
        return self._edit(entry_id, pinned=pinned)

    def delete(self, entry_id: str) -> None:
        if self.forget(entry_id) is None:
            raise MemoryEntryNotFound(entry_id)

    def _edit(self, entry_id: str, **changes) -> MemoryEntry:
        with self._lock:
            entry = self.state.entries.get(entry_id)
            if entry is None:  # story passages are the transcript's: /forget, not edit
                raise MemoryEntryNotFound(entry_id)
            entry = replace(entry, **changes)
            self.journal.put(entry, None, new=False)
            self._refresh()
        self.store.upsert([entry])
        return entry

    def forget(self, entry_id: str) -> MemoryEntry | None:
        with self._lock:
            entry = self.state.entries.get(entry_id) or next(
                (event for event in self.live_events() if event.id == entry_id), None)
            if entry is None:
                return None
            self.journal.write("remove", None, id=entry_id)
            self._refresh()
        self.store.delete([entry_id])
        return entry

    # -- reading ------------------------------------------------------------

    def recall(self, recent: list[Turn], player_input: str, now: int,
               hide_turn: int | None = None) -> Recall:
        """What turn `now` is reminded of. `recent` is the history the prompt already
        holds verbatim (its events are not repeated); `hide_turn` is a turn being
        retried, whose memories must not shape its new telling."""
        self.wait()
        with self._lock:
            entries = dict(self.state.entries)
            hidden = {i for i, turn in self.state.written_by.items() if turn == hide_turn}
            removed = set(self.state.removed)
            named = self.lorebook.mentioned(player_input) - hidden
            scanned = "\n".join(f"{t.input}\n{t.output}" for t in recent[-KEYWORD_SCAN_TURNS:])
            named_lately = self.lorebook.mentioned(scanned) - hidden - named
        candidates = {i: Recalled(entries[i], self._score(entries[i], KEYWORD_RELEVANCE, now),
                                  "keyword") for i in named}
        candidates |= {i: Recalled(entries[i], self._score(entries[i], RECENT_NAME_RELEVANCE,
                                                           now), "keyword")
                       for i in named_lately}
        similarity: dict[str, float] = {}
        oldest_shown = recent[0].number if recent else now
        problem = None
        try:
            context = (self.context_vector(recent[-1].output)
                       if recent and wants_context(player_input) else None)
            found = nearest(self.store, player_input, vector_candidates(len(recent)), context)
        except CampaignError as error:  # the index is down: remember by name only
            found, problem = {}, f"Memory search failed, names only this turn: {error}"
        for entry_id, (hit, relevance) in found.items():
            if entry_id in hidden or entry_id in removed or shown_verbatim(hit, oldest_shown):
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

    def context_vector(self, last_output: str):
        """The embedding of the last narration's end (None for an empty one), kept from
        the background writer for the next recall; a turn taken back is embedded anew."""
        text = context_of(last_output)
        if not text:
            return None
        known_text, vector = self._last_context
        if text != known_text:
            vector = self.store.embed([text])[0]
            self._last_context = (text, vector)
        return vector

    def _score(self, entry: MemoryEntry, relevance: float, now: int) -> float:
        return score(entry, relevance, self._last_mention.get(entry.id, 0), now)

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

    def take_problems(self) -> list[str]:
        problems, self._problems = self._problems, []
        return problems

    def write_ms(self, number: int) -> float:
        """How long turn `number`'s background writing took (events and extraction)."""
        return self._write_ms.get(number, 0.0)

    # -- lifecycle ----------------------------------------------------------

    def wait(self) -> None:
        """Wait for the background writer (the previous turn's events and extraction)."""
        worker = self._worker
        if worker is not None:
            worker.join()
            self._worker = None
            self._worker_turn = 0

    def close(self, finish: bool = True) -> None:
        """Stop: with finish=False a running extraction is cancelled (the next open
        extracts that turn again)."""
        with self._lock:
            self._closed = True
        if not finish:
            self._cancel.set()
        self.wait()
        if self.extractor:
            self.extractor.close()
        self.store.close()


def listing_order(entries: list[MemoryEntry]) -> list[MemoryEntry]:
    """Entries in the order /memory lists them: by kind, then name."""
    order = {kind: i for i, kind in enumerate(NAMED_KINDS)}
    return sorted(entries, key=lambda e: (not e.pinned, order.get(e.kind, 9),
                                          e.name.casefold(), e.id))
