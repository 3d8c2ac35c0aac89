"""What the terminal UI needs from the story memory: list entries by kind, search, edit,
pin/unpin and delete. The memory store implements this protocol; the side panel and the
memory browser only ever talk to it. InMemoryMemoryView is a small complete
implementation (tests, and a store adapter's reference)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Protocol

MEMORY_KINDS = ("character", "location", "item", "plot", "event", "summary")


class MemoryEntryNotFound(LookupError):
    """The entry is gone (deleted elsewhere, or undone with its turn)."""


@dataclass(frozen=True)
class MemoryEntry:
    id: str
    kind: str  # one of MEMORY_KINDS
    name: str  # a short title: "Maren Holt", "the Ember Stone"
    text: str
    pinned: bool = False  # pinned entries ride in every prompt
    turn: int | None = None  # the turn that created it, if any


class MemoryView(Protocol):
    def entries(self, kind: str | None = None) -> list[MemoryEntry]:
        """All entries (of one kind), pinned first, then by name."""

    def search(self, query: str, limit: int = 50) -> list[MemoryEntry]:
        """Entries matching the query, best first."""

    def update(self, entry_id: str, text: str) -> MemoryEntry:
        """Replace an entry's text; raises MemoryEntryNotFound."""

    def set_pinned(self, entry_id: str, pinned: bool) -> MemoryEntry:
        """Pin or unpin an entry; raises MemoryEntryNotFound."""

    def delete(self, entry_id: str) -> None:
        """Remove an entry; raises MemoryEntryNotFound."""


def memory_of(game: object) -> MemoryView | None:
    """The game's memory, once the memory store is attached to Game as `game.memory`."""
    return getattr(game, "memory", None)


def sort_entries(entries: list[MemoryEntry]) -> list[MemoryEntry]:
    return sorted(entries, key=lambda entry: (not entry.pinned, entry.name.lower(), entry.id))


class InMemoryMemoryView:
    """A MemoryView over a dict, searched by words in name and text."""

    def __init__(self, entries: list[MemoryEntry] | None = None):
        self._entries = {entry.id: entry for entry in entries or []}
        self._ids = itertools.count(len(self._entries) + 1)

    def add(self, kind: str, name: str, text: str, pinned: bool = False,
            turn: int | None = None) -> MemoryEntry:
        if kind not in MEMORY_KINDS:
            raise ValueError(f"Unknown memory kind {kind!r}; use one of {MEMORY_KINDS}.")
        entry = MemoryEntry(f"m{next(self._ids)}", kind, name, text, pinned, turn)
        self._entries[entry.id] = entry
        return entry

    def entries(self, kind: str | None = None) -> list[MemoryEntry]:
        return sort_entries([e for e in self._entries.values() if kind in (None, e.kind)])

    def search(self, query: str, limit: int = 50) -> list[MemoryEntry]:
        words = query.lower().split()
        if not words:
            return self.entries()[:limit]

        def hits(entry: MemoryEntry) -> int:
            haystack = f"{entry.name} {entry.text} {entry.kind}".lower()
            return sum(word in haystack for word in words)

        scored = [(hits(entry), entry) for entry in self.entries()]
        return [entry for score, entry in sorted(scored, key=lambda pair: -pair[0])
                if score][:limit]

    def update(self, entry_id: str, text: str) -> MemoryEntry:
        return self._replace(entry_id, text=text)

    def set_pinned(self, entry_id: str, pinned: bool) -> MemoryEntry:
        return self._replace(entry_id, pinned=pinned)

    def delete(self, entry_id: str) -> None:
        self._get(entry_id)
        del self._entries[entry_id]

    def _get(self, entry_id: str) -> MemoryEntry:
        try:
            return self._entries[entry_id]
        except KeyError:
            raise MemoryEntryNotFound(f"Memory entry {entry_id} no longer exists.") from None

    def _replace(self, entry_id: str, **changes) -> MemoryEntry:
        entry = replace(self._get(entry_id), **changes)
        self._entries[entry_id] = entry
        return entry
