"""The Chroma index of a campaign's memories: a derived cache, rebuilt by reindex.

Embedded by default (a PersistentClient in saves/<campaign>/memory/), or a Chroma
server with --memory-url http://HOST:PORT. Either way one collection per campaign,
whose metadata records the embedding model and what its vectors were made of: a
collection made with another model (or an older format) is rebuilt, never mixed.
Embeddings are computed here, in batches, by the embedder.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from storyteller.errors import MemoryIndexError
from storyteller.memory.embedder import MiniLMEmbedder
from storyteller.memory.entries import MemoryEntry

INDEX_FOLDER = "memory"
MODEL_KEY = "embedding_model"
FORMAT_KEY = "index_format"
INDEX_FORMAT = 2  # 2: vectors of MemoryEntry.search_text (1: of the full text)
WRITE_BATCH = 128


@dataclass(frozen=True)
class Hit:
    entry: MemoryEntry
    similarity: float  # cosine similarity with the query, 1 = same meaning


def collection_name(campaign_folder: Path) -> str:
    """'st-<name>-<hash of the folder>': readable on a shared server, and two campaigns
    of the same name in different saves folders never share a collection."""
    folder = campaign_folder.resolve()
    readable = re.sub(r"[^a-zA-Z0-9]+", "-", folder.name).strip("-")[:40] or "campaign"
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:10]
    return f"st-{readable}-{digest}"


def connect(campaign_folder: Path, url: str | None):
    """A Chroma client: embedded in the campaign folder, or the server at url."""
    import chromadb  # heavy: imported only when a campaign's memory opens

    settings = chromadb.Settings(anonymized_telemetry=False)
    if not url:
        path = campaign_folder / INDEX_FOLDER
        try:
            return chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as error:  # chromadb raises many kinds; all mean the same here
            raise MemoryIndexError(f"Cannot open the memory index in {path} ({error}); make "
                                   "the saves directory writable, or if it is, delete that "
                                   "folder and run `storyteller reindex`.") from None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MemoryIndexError(f"Invalid --memory-url {url!r}; use http://HOST:PORT.")
    try:
        return chromadb.HttpClient(host=parsed.hostname,
                                   port=parsed.port or (443 if parsed.scheme == "https" else 80),
                                   ssl=parsed.scheme == "https", settings=settings)
    except Exception as error:
        raise MemoryIndexError(f"Cannot reach the Chroma server at {url} ({error}); start it "
                               "with `chroma run --path DIR --port PORT` or drop "
                               "--memory-url.") from None


class MemoryStore:
    def __init__(self, client, name: str, embedder: MiniLMEmbedder, read_only: bool = False):
        """read_only: the collection is never created or replaced (a missing or
        mismatched one is a MemoryIndexError); the caller does not write to it either."""
        self.client = client
        self.name = name
        self.embedder = embedder
        self.read_only = read_only
        self.collection = self._guard(self._open_collection)

    @classmethod
    def open(cls, campaign_folder: Path, url: str | None, embedder: MiniLMEmbedder,
             index_root: Path | None = None, read_only: bool = False) -> MemoryStore:
        """index_root: the folder holding the embedded index (default: the campaign's)."""
        return cls(connect(index_root or campaign_folder, url), collection_name(campaign_folder),
                   embedder, read_only)

    def _open_collection(self):
        from chromadb.errors import NotFoundError

        try:
            collection = self.client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            collection = None
        if collection is not None:
            recorded = collection.metadata or {}
            if all(recorded.get(key) == value for key, value in self._metadata().items()):
                return collection
        if self.read_only:
            raise MemoryIndexError(f"The memory index {self.name} is missing or was made "
                                   "with another embedding model; run `storyteller reindex`.")
        if collection is not None:
            self.client.delete_collection(self.name)  # other vectors: start over
        return self.client.create_collection(
            self.name, embedding_function=None, metadata=self._metadata(),
            configuration={"hnsw": {"space": "cosine"}})

    def _metadata(self) -> dict:
        return {MODEL_KEY: self.embedder.model_name, FORMAT_KEY: INDEX_FORMAT}

    def reset(self) -> None:
        """Drop every vector (reindex starts from an empty collection)."""
        def recreate():
            from chromadb.errors import NotFoundError

            with contextlib.suppress(NotFoundError):  # someone deleted it already
                self.client.delete_collection(self.name)
            return self._open_collection()
        self.collection = self._guard(recreate)

    # -- writing ------------------------------------------------------------

    def upsert(self, entries: Iterable[MemoryEntry],
               progress: Callable[[int], None] | None = None) -> None:
        """Embed and store entries, WRITE_BATCH at a time; progress(n) after each batch.
        An id given twice (one extraction naming someone twice) keeps its last version:
        Chroma refuses duplicate ids in one upsert."""
        latest = {entry.id: entry for entry in entries}
        batch: list[MemoryEntry] = []
        for entry in latest.values():
            batch.append(entry)
            if len(batch) == WRITE_BATCH:
                self._upsert_batch(batch, progress)
                batch = []
        if batch:
            self._upsert_batch(batch, progress)

    def _upsert_batch(self, batch: list[MemoryEntry], progress) -> None:
        vectors = self.embedder([entry.search_text for entry in batch])
        self._guard(lambda: self.collection.upsert(
            ids=[entry.id for entry in batch], embeddings=vectors,
            documents=[entry.text for entry in batch],
            metadatas=[entry.metadata() for entry in batch]))
        if progress:
            progress(len(batch))

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._guard(lambda: self.collection.delete(ids=ids))

    def delete_events_from(self, turn: int) -> None:
        """Drop the story passages of turns from `turn` on."""
        self._guard(lambda: self.collection.delete(
            where={"$and": [{"kind": "event"}, {"turn": {"$gte": turn}}]}))

    # -- reading ------------------------------------------------------------

    def count(self) -> int:
        return self._guard(self.collection.count)

    def embed(self, texts: list[str]) -> list:
        return self.embedder(texts)

    def query(self, vectors: list, n: int) -> list[list[Hit]]:
        """For each query vector, the n nearest entries, nearest first."""
        result = self._guard(lambda: self.collection.query(
            query_embeddings=vectors, n_results=n,
            include=["documents", "metadatas", "distances"]))
        return [[Hit(MemoryEntry.from_metadata(entry_id, text, metadata), 1.0 - distance)
                 for entry_id, text, metadata, distance in zip(
                     ids, documents, metadatas, distances, strict=True)]
                for ids, documents, metadatas, distances in zip(
                    result["ids"], result["documents"], result["metadatas"],
                    result["distances"], strict=True)]

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            self._guard(close)

    def _guard(self, call):
        """Run a Chroma call; its failures become one MemoryIndexError that says what to do."""
        try:
            return call()
        except MemoryIndexError:
            raise
        except Exception as error:  # chromadb raises many kinds; all mean the same here
            raise MemoryIndexError(f"The memory index failed ({error.__class__.__name__}: "
                                   f"{error}); check --memory-url or run `storyteller "
                                   "reindex`.") from None
