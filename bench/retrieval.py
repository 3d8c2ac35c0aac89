"""Retrieval latency: the vector half of each turn's recall (embedding the player's input
with all-MiniLM-L6-v2, then one Chroma query; a short input also searches with the
last narration, whose embedding the game made in the background when that turn was
written, as it is here before the clock starts), at 1k, 10k and 50k memories in an
embedded index, and at 10k in a `chroma run` server on 127.0.0.1. Goal: p95 under 25 ms
at 10k on the 2-core machine.

`python -m bench.retrieval` prints the markdown table; `run()` returns it.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

SIZES = (1_000, 10_000, 50_000)
SERVER_SIZE = 10_000
COPY_BATCH = 5_000
QUERIES = 200
GOAL_P95_MS = 25.0
SEED = 11
RECENT_TURNS = 8  # the default history window, whose events recall fetches and drops

_WHO = ["the blacksmith", "Maren", "the ferryman", "a hooded stranger", "the elder", "Pell",
        "the innkeeper", "a tired soldier", "the cartographer", "the harbour master",
        "a child with a kite", "the priestess", "Jory the peddler", "the captain"]
_DID = ["hid", "sold", "repaired", "stole", "buried", "lost", "found", "traded", "burned",
        "polished", "promised to return", "painted", "hammered", "broke"]
_WHAT = ["a brass key", "the silver ring", "an old map", "a lantern", "the red gem",
         "a sealed letter", "the iron sword", "a wooden flute", "the bell rope", "a compass",
         "a jar of honey", "the ledger", "a torn banner", "a bronze coin"]
_WHERE = ["under the crooked oak", "behind the mill", "in the cellar of the inn",
          "at the top of the tower", "beside the frozen well", "on the drowned pier",
          "inside the shrine", "near the mountain pass", "in the market square",
          "below the lighthouse", "at the edge of the marsh", "in the forge"]
_WHY = ["before dawn", "because a debt was due", "while the bells rang", "to fool the guards",
        "after the storm", "for a promise made years ago", "in a hurry", "without a word"]


def memory_texts(count: int, rng: random.Random) -> list[str]:
    return [f"Turn {i}. {rng.choice(_WHO).capitalize()} {rng.choice(_DID)} {rng.choice(_WHAT)} "
            f"{rng.choice(_WHERE)} {rng.choice(_WHY)}." for i in range(count)]


def queries(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(player input, last narration) pairs."""
    return [(f"ask {rng.choice(_WHO)} about {rng.choice(_WHAT)}",
             f"You stand {rng.choice(_WHERE)}; {rng.choice(_WHO)} {rng.choice(_DID)} "
             f"{rng.choice(_WHAT)} {rng.choice(_WHY)}, and the wind turns cold.")
            for _ in range(count)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(store, asked: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Per query: recall's vector search as a whole (`total`), and apart, its embedding
    and its Chroma query."""
    from storyteller.memory.recall import context_of, nearest, vector_candidates, wants_context

    n = vector_candidates(RECENT_TURNS)
    times: dict[str, list[float]] = {"embed": [], "query": [], "total": []}
    for player_input, last_output in asked:
        context = None
        if wants_context(player_input):  # the game embeds it in the background
            context = store.embed([context_of(last_output)])[0]
        started = time.perf_counter()
        found = nearest(store, player_input, n, context)
        times["total"].append(_ms_since(started))
        started = time.perf_counter()
        vector = store.embed([player_input])[0]  # as nearest
        times["embed"].append(_ms_since(started))
        started = time.perf_counter()
        store.query([vector] if context is None else [vector, context], n)
        times["query"].append(_ms_since(started))
        assert found, "a search of a full index found nothing"
    return times


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def run() -> str:
    from storyteller.memory.embedder import shared_embedder
    from storyteller.memory.store import MemoryStore

    rng = random.Random(SEED)
    embedder = shared_embedder()
    asked = queries(QUERIES, rng)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as folder:
        store = MemoryStore.open(Path(folder), None, embedder)
        indexed = 0
        for size in SIZES:
            per_second = index(store, memory_texts(size - indexed, rng), indexed)
            indexed = size
            rows.append((f"{size:,}", times_of(store, asked), per_second, size))
            if size == SERVER_SIZE:
                rows.append((f"{size:,} (server)", server_times(store, Path(folder), asked),
                             None, None))  # the goal is the default, embedded store's
        store.close()
    return table(rows)


def index(store, texts: list[str], first: int) -> float:
    """Add memories; returns memories indexed per second."""
    from storyteller.memory.entries import MemoryEntry

    store.embed(["load the model"])
    started = time.perf_counter()
    store.upsert(MemoryEntry(id=f"event-{first + i}", kind="event", text=text,
                             turn=first + i, importance=3) for i, text in enumerate(texts))
    return len(texts) / (time.perf_counter() - started)


def times_of(store, asked) -> dict[str, list[float]]:
    store.embed(["warm up"])  # the first call pays one-time setup
    return measure(store, asked)


def server_times(store, folder: Path, asked) -> dict[str, list[float]]:
    """The same memories, vectors copied, in a `chroma run` server."""
    from storyteller.memory.chroma_server import chroma_server
    from storyteller.memory.store import MemoryStore

    with chroma_server(folder / "server-data", folder / "server.log") as url:
        remote = MemoryStore.open(folder / "server-campaign", url, store.embedder)
        for start in range(0, store.count(), COPY_BATCH):
            batch = store.collection.get(include=["embeddings", "documents", "metadatas"],
                                         limit=COPY_BATCH, offset=start)
            remote.collection.add(ids=batch["ids"], embeddings=batch["embeddings"],
                                  documents=batch["documents"], metadatas=batch["metadatas"])
        times = times_of(remote, asked)
        remote.close()
    return times


def table(rows) -> str:
    lines = ["### Retrieval latency (query embedding + Chroma query)", "",
             f"{QUERIES} queries per size, embedded Chroma (and a `chroma run` server), "
             "all-MiniLM-L6-v2 on the CPU with the game's torch threads; "
             f"goal: p95 < {GOAL_P95_MS:.0f} ms at 10k.", "",
             "| memories | p50 ms | p95 ms | embed p50 ms | Chroma p50 ms | mean ms "
             "| indexing memories/s | goal |",
             "|---:|---:|---:|---:|---:|---:|---:|:---|"]
    for label, times, per_second, size in rows:
        p95 = percentile(times["total"], 0.95)
        verdict = ("met" if p95 < GOAL_P95_MS else "missed") if size == 10_000 else ""
        indexing = f"{per_second:.0f}" if per_second else "(copied)"
        lines.append(
            f"| {label} | {percentile(times['total'], 0.5):.1f} | {p95:.1f} "
            f"| {percentile(times['embed'], 0.5):.1f} | {percentile(times['query'], 0.5):.1f} "
            f"| {statistics.fmean(times['total']):.1f} | {indexing} | {verdict} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
