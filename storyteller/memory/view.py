"""What the terminal UI needs from the story memory: list entries by kind, search, edit,
pin/unpin and delete. StoryMemory implements it; the side panel and the memory browser
only ever talk to this protocol."""

from __future__ import annotations

from typing import Protocol

from storyteller.errors import StorytellerError
from storyteller.memory.entries import NAMED_KINDS, MemoryEntry


class MemoryEntryNotFound(StorytellerError, LookupError):
    """The entry is gone (deleted elsewhere, or undone with its turn), or it cannot be
    changed that way (a story passage is the transcript's own words)."""


class MemoryView(Protocol):
    def entries(self, kind: str | None = None) -> list[MemoryEntry]:
        """All entries (of one kind); kind "event" lists the story passages."""

    def search(self, query: str, limit: int = 50) -> list[MemoryEntry]:
        """Entries matching the query, best first."""

    def update(self, entry_id: str, text: str) -> MemoryEntry:
        """Replace an entry's text; raises MemoryEntryNotFound."""

    def set_pinned(self, entry_id: str, pinned: bool) -> MemoryEntry:
        """Pin or unpin an entry; raises MemoryEntryNotFound."""

    def delete(self, entry_id: str) -> None:
        """Remove an entry; raises MemoryEntryNotFound."""


def listing_order(entries: list[MemoryEntry]) -> list[MemoryEntry]:
    """Entries in the order /memory and the memory browser list them: pinned first, then
    by kind, then name."""
    order = {kind: i for i, kind in enumerate(NAMED_KINDS)}
    return sorted(entries, key=lambda e: (not e.pinned, order.get(e.kind, 9),
                                          e.name.casefold(), e.id))
