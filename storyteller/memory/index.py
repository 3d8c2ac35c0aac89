"""A campaign's memory index: the vector index (Chroma) and the lexical one (SQLite FTS5)
over the same entries, written together. Both are derived: rebuilt from the world, the
journal and the transcript."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from storyteller.memory.entries import MemoryEntry
from storyteller.memory.lexical import LexicalIndex

if TYPE_CHECKING:
    from storyteller.memory.store import MemoryStore


class MemoryIndex:
    def __init__(self, vectors: MemoryStore, words: LexicalIndex):
        self.vectors = vectors
        self.words = words

    @classmethod
    def open(cls, campaign_folder: Path, memory_url: str | None, embedder,
             index_root: Path | None = None, read_only: bool = False) -> MemoryIndex:
        """index_root: where the index files are, if not in the campaign folder (a copy
        of them, which nothing done with it can change in the campaign); read_only: the
        vector collection is not created or replaced."""
        from storyteller.memory.store import INDEX_FOLDER, MemoryStore

        vectors = MemoryStore.open(campaign_folder, memory_url, embedder, index_root, read_only)
        return cls(vectors, LexicalIndex.open(index_root or campaign_folder, INDEX_FOLDER))

    def upsert(self, entries: Iterable[MemoryEntry],
               progress: Callable[[int], None] | None = None) -> None:
        entries = list(entries)
        self.words.upsert(entries)
        self.vectors.upsert(entries, progress)

    def delete(self, ids: list[str]) -> None:
        self.words.delete(ids)
        self.vectors.delete(ids)

    def delete_events_from(self, turn: int) -> None:
        self.words.delete_events_from(turn)
        self.vectors.delete_events_from(turn)

    def reset(self) -> None:
        self.words.reset()
        self.vectors.reset()

    def count(self) -> int:
        """Entries in both indexes, or -1 when they disagree (one of them is stale)."""
        vectors, words = self.vectors.count(), self.words.count()
        return vectors if vectors == words else -1

    def embed(self, texts: list[str]) -> list:
        return self.vectors.embed(texts)

    def close(self) -> None:
        self.words.close()
        self.vectors.close()
