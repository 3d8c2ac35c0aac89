"""StoryMemory: what a campaign remembers, written after each turn and recalled before
the next. It is a store derived from the transcript: record(turn), forget_from(n) and
settle() keep it in step with the story; the terminal UI edits it as a MemoryView.

Sources of truth: the world file (lore), memories.jsonl (extracted facts, pins,
forgets) and the transcript (story passages). The Chroma index is derived from them:
opened on a campaign, it is rebuilt when it is missing, made with another embedding
model, or does not hold what the sources say.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from storyteller.errors import MemoryIndexError
from storyteller.memory.entries import (
    NOTES,
    MemoryEntry,
    event_entries,
    short_hash,
    world_entries,
)
from storyteller.memory.journal import MemoryJournal
from storyteller.memory.lorebook import Lorebook, Mentions
from storyteller.memory.recall import (
    Recall,
    Recalled,
    Recaller,
    RecallQuery,
    context_of,
    wants_context,
)
from storyteller.memory.view import MemoryEntryNotFound
from storyteller.memory.writer import Job, MemoryWriter, NoteCounts
from storyteller.storage.campaign import Campaign
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World

if TYPE_CHECKING:
    from storyteller.memory.extract import Extractor
    from storyteller.memory.index import MemoryIndex

PIN_IMPORTANCE = 10
BROWSE_DEPTH = 50  # search hits the memory browser lists

Progress = Callable[[int], None]


class StoryMemory:
    def __init__(self, campaign: Campaign, world: World, store: MemoryIndex,
                 extractor: Extractor | None):
        """store: the campaign's vector and lexical indexes (memory.index)."""
        self.campaign = campaign
        self.store = store
        self.extractor = extractor
        self.journal = MemoryJournal(campaign.path)
        self.mentions = Mentions()
        self.recaller = Recaller(store, self.mentions)
        self._world = world_entries(world.lore)
        self._lock = threading.RLock()  # guards the journal, the state and the lorebook
        self._index_lock = threading.Lock()  # orders index writes with forget_from's deletes
        self._last_context: tuple[str, object] = ("", None)  # a narration end, embedded
        self._listeners: list[Callable[[], None]] = []
        self._closed = False
        self._behind = False  # a write failed: the index lags the story until caught up
        self._refresh()
        for turn in campaign.turns:
            self.mentions.note(self.lorebook, turn)
        self.writer = MemoryWriter(self._write)

    @classmethod
    def open(cls, campaign: Campaign, world: World, memory_url: str | None,
             extractor: Extractor | None, embedder=None) -> StoryMemory:
        """Open the campaign's index (rebuilding it if it is stale) and catch up with a
        last turn whose extraction was cut short."""
        from storyteller.memory.embedder import shared_embedder
        from storyteller.memory.index import MemoryIndex

        embedder = embedder or shared_embedder()
        embedder.warm_up()
        memory = cls(campaign, world, MemoryIndex.open(campaign.path, memory_url, embedder),
                     extractor)
        if memory.index_is_stale():
            memory.reindex()
        last = campaign.turns[-1] if campaign.turns else None
        if extractor and last and last.number not in memory.state.extracted:
            memory.writer.add(last, index_events=False)
        return memory

    @classmethod
    def open_read_only(cls, campaign: Campaign, world: World, memory_url: str | None,
                       snapshot: Path) -> StoryMemory:
        """The memory to read, never to write: an embedded index is read from a copy in
        the folder `snapshot` (whatever Chroma does on opening cannot touch the campaign),
        no notes are taken, and an index that does not hold what the sources say is
        refused, not rebuilt."""
        import shutil

        from storyteller.memory.embedder import shared_embedder
        from storyteller.memory.index import MemoryIndex
        from storyteller.memory.store import INDEX_FOLDER

        stale = MemoryIndexError(f"The memory index of {campaign.name} does not match its "
                                 "story; run `storyteller reindex --campaign "
                                 f"{campaign.name}` first.")
        if not memory_url:
            if not (campaign.path / INDEX_FOLDER).is_dir():
                raise stale
            shutil.copytree(campaign.path / INDEX_FOLDER, snapshot / INDEX_FOLDER)
        embedder = shared_embedder()
        embedder.warm_up()
        index = MemoryIndex.open(campaign.path, memory_url, embedder,
                                 index_root=None if memory_url else snapshot, read_only=True)
        memory = cls(campaign, world, index, extractor=None)
        if memory.index_is_stale():
            memory.close()
            raise stale
        return memory

    # -- state --------------------------------------------------------------

    def _refresh(self) -> None:
        """Replay the journal over the world's lore; rebuild the keyword index."""
        self.state = self.journal.replay(self._world)
        self.lorebook = Lorebook(self.state.entries.values())

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
        self.settle()
        with self._lock, self._index_lock:
            items = list(self.state.entries.values()) + self.live_events()
            if total:
                total(len(items))
            self.store.reset()
            self.store.upsert(items, progress)
            return len(items)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call listener (from the writer's thread) after background work changed the
        memory, e.g. to refresh a view."""
        self._listeners.append(listener)

    # -- the derived-store interface ------------------------------------------------

    def record(self, turn: Turn) -> None:
        """After a turn is saved: index its passages and take its notes, in the
        background."""
        with self._lock:
            self.mentions.note(self.lorebook, turn)
            if not self._closed:  # after close (quit mid-turn) the next open catches up
                self.writer.add(turn)

    def forget_from(self, number: int) -> None:
        """Take back what turns from `number` on wrote: their passages, their notes and
        what the notes changed."""
        self.writer.cancel_from(number)
        with self._lock:
            touched = [entry_id for entry_id, turn in self.state.written_by.items()
                       if turn >= number]
            if self.journal.has_records_from(number):
                self.journal.write("forget_from", number)
                self._refresh()
            self.mentions.forget_from(number)
            restored = [self.state.entries[i] for i in touched if i in self.state.entries]
        try:
            with self._index_lock:
                self.store.delete([i for i in touched if i not in self.state.entries])
                self.store.upsert(restored)
                self.store.delete_events_from(number)
        except MemoryIndexError:
            self._behind = True  # the journal is right; the next write catches the index up
            raise

    def settle(self) -> None:
        """Wait for the background writer (every recorded turn's passages and notes)."""
        self.writer.settle()

    # -- the background writer's job ---------------------------------------------------

    def _write(self, job: Job) -> None:
        """One turn's memory. A write that fails (a memory server gone away) leaves the
        index behind the story; the next job catches it up first, once it can."""
        try:
            if self._behind and self.index_is_stale():
                self._catch_up()
            self._behind = False
            self._write_turn(job)
        except MemoryIndexError:
            self._behind = True
            raise

    def _catch_up(self) -> None:
        with self._lock:
            items = list(self.state.entries.values()) + self.live_events()
        with self._index_lock:
            self.store.reset()
            self.store.upsert(items)

    def _write_turn(self, job: Job) -> None:
        turn = job.turn
        if job.index_events:
            with self._index_lock:
                if not self._is_live(turn):
                    return
                self.store.upsert([event for event in event_entries(turn)
                                   if event.id not in self.state.removed])
            self.context_vector(turn.output)  # now, not while the next turn waits
        if self.extractor is not None and not job.cancel.is_set():
            self._extract(job)
        self._notify()

    def _extract(self, job: Job) -> None:
        from storyteller.memory.extract import take_notes

        turn = job.turn
        while True:  # a turn that starts stops it; it is taken again once that turn is told
            with self.writer.foreground.between_turns(job):
                if job.cancel.is_set():
                    return
                result = self.extractor.extract(turn, self.entries(), job.stop)
            if not result.cancelled:
                break
            if job.cancel.is_set():
                return
            self.writer.notes.stopped += 1
        with self._lock:
            if job.cancel.is_set() or not self._is_live(turn):
                return
            written = take_notes(result.facts, self.state.entries, turn)
            for entry in written:
                self.journal.put(entry, turn.number, new=entry.id not in self.state.entries)
            self.journal.write("extracted", turn.number, facts=len(result.facts),
                               rejected=len(result.rejected), ms=round(result.ms, 1))
            self._refresh()
            self.mentions.note(self.lorebook, turn)
            self.writer.notes.noted += 1
        with self._index_lock:
            if self._is_live(turn):
                self.store.upsert(written)

    def _is_live(self, turn: Turn) -> bool:
        """Whether the turn is still in the story (not undone, retold or loaded over)."""
        return next((t for t in reversed(self.campaign.turns) if t.number == turn.number),
                    None) == turn

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def telling(self):
        """A context for telling a turn: note-taking waits, and stops if it runs."""
        return self.writer.foreground.turn()

    @property
    def notes(self) -> NoteCounts:
        """How many turns got their notes, and how often a turn stopped the note-taking."""
        return self.writer.notes

    def take_problems(self) -> list[str]:
        problems, self.writer.problems = self.writer.problems, []
        return problems

    def written(self, number: int) -> bool:
        """Whether turn `number`'s background writing is over (done, or given up)."""
        return number in self.writer.write_ms

    def write_ms(self, number: int) -> float:
        """How long turn `number`'s background writing took (passages and notes)."""
        return self.writer.write_ms.get(number, 0.0)

    # -- editing: /remember, /forget and the memory browser ------------------------------

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

    def search(self, query: str, limit: int = BROWSE_DEPTH) -> list[MemoryEntry]:
        """Entries named in the query, then what the lexical and vector searches find,
        best first (story passages as the passages they are)."""
        with self._lock:
            entries = dict(self.state.entries)
            named = [entries[i] for i in sorted(self.lorebook.mentioned(query))]
        events = {event.id: event for event in self.live_events()}
        words = [entry_id for entry_id, *_ in self.store.words.search(query, limit)]
        vector = self.store.vectors.query(self.store.embed([query]), limit)[0]
        found = {entry.id: entry for entry in named}
        for entry_id in [*words, *(hit.entry.id for hit in vector)]:
            entry = entries.get(entry_id) or events.get(entry_id)
            if entry is not None:
                found.setdefault(entry_id, entry)
        return list(found.values())[:limit]

    def update(self, entry_id: str, text: str) -> MemoryEntry:
        """Replace an entry's text (a player's edit: no turn's undo takes it back)."""
        return self._edit(entry_id, text=text.strip())

    def set_pinned(self, entry_id: str, pinned: bool) -> MemoryEntry:
        return self._edit(entry_id, pinned=pinned)

    def delete(self, entry_id: str) -> None:
        if self.forget(entry_id) is None:
            raise MemoryEntryNotFound(f"Memory entry {entry_id} no longer exists.")

    def _edit(self, entry_id: str, **changes) -> MemoryEntry:
        with self._lock:
            entry = self.state.entries.get(entry_id)
            if entry is None:  # story passages are the transcript's: /forget, not edit
                raise MemoryEntryNotFound(f"Memory entry {entry_id} cannot be changed: "
                                          "it is gone, or a story passage.")
            entry = replace(entry, **changes)
            self.journal.put(entry, None, new=False)
            self._refresh()
        self.store.upsert([entry])
        return entry

    def forget_notes(self) -> int:
        """Drop every note (what note-taking wrote; the lore and pins stay). Returns how
        many were dropped."""
        with self._lock:
            ids = [entry.id for entry in self.state.entries.values() if entry.source == NOTES]
            for forgotten in ids:
                self.journal.write("remove", None, id=forgotten)
            self._refresh()
        self.store.delete(ids)
        return len(ids)

    def forget(self, entry_id: str) -> MemoryEntry | None:
        """Drop an entry, a story passage, or (id "turn-N", as recall names them) every
        passage of a turn. Returns what was dropped, or None if there is no such id."""
        with self._lock:
            entry = self.state.entries.get(entry_id)
            passages = [event for event in self.live_events()
                        if event.id == entry_id or f"turn-{event.turn}" == entry_id]
            if entry is None and not passages:
                return None
            ids = [entry_id] if entry is not None else [event.id for event in passages]
            for forgotten in ids:
                self.journal.write("remove", None, id=forgotten)
            self._refresh()
        self.store.delete(ids)
        return entry or passages[0]

    # -- reading ------------------------------------------------------------

    def recall(self, recent: list[Turn], player_input: str, now: int,
               hide_turn: int | None = None, exclude: set[str] | frozenset = frozenset(),
               scene: str = "") -> Recall:
        """What turn `now` is reminded of. `recent` is the history the prompt already
        holds verbatim (its passages are not repeated), `exclude` what it holds besides
        (the recalled block), `scene` the text of the rest of the prompt (what an ordinary
        action names that it lacks is what the action needs); `hide_turn` is a turn being
        retold, whose memories must not shape its new telling. Never waits for the
        background writer."""
        query = self._query(recent, player_input, now, hide_turn, exclude, scene)
        context = (self.context_vector(recent[-1].output)
                   if recent and wants_context(player_input) else None)
        return self.recaller.recall(query, context)

    def scene(self, recent: list[Turn], now: int, hide_turn: int | None = None,
              ) -> list[Recalled]:
        """What the last turns are about, best first: for the recalled block the prompt
        keeps while the scene lasts."""
        if not recent:
            return []
        last = recent[-1]
        query = self._query(recent, f"{last.input}\n{last.output}", now, hide_turn)
        try:
            return self.recaller.scene(query, self.context_vector(last.output))
        except MemoryIndexError:
            return []

    def _query(self, recent: list[Turn], text: str, now: int, hide_turn: int | None,
               exclude: set[str] | frozenset = frozenset(), scene: str = "") -> RecallQuery:
        with self._lock:
            return RecallQuery(
                entries=dict(self.state.entries), removed=set(self.state.removed),
                hidden={i for i, turn in self.state.written_by.items() if turn == hide_turn},
                lorebook=self.lorebook, turns={t.number: t for t in self.campaign.turns},
                recent=recent, text=text, now=now, exclude=set(exclude), scene=scene)

    def context_vector(self, last_output: str):
        """The embedding of the last narration's end (None for an empty one), kept from
        the background writer for the next recall; a turn taken back is embedded anew."""
        text = context_of(last_output)
        if not text:
            return None
        known_text, vector = self._last_context
        if text != known_text:
            try:
                vector = self.store.embed([text])[0]
            except MemoryIndexError:
                return None
            self._last_context = (text, vector)
        return vector

    # -- lifecycle ----------------------------------------------------------

    def close(self, finish: bool = True) -> None:
        """Stop: with finish=False the running note-taking is cancelled (the next open
        takes that turn's notes again)."""
        with self._lock:
            self._closed = True
        self.writer.stop(finish)
        self.store.close()
