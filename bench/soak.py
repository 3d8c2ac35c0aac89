"""Soak: a 1,000-turn headless game with the scripted narrator (named as such: the model
is beside the point, the work around it is measured) and the real story memory (the
embedder and an embedded Chroma index), note-taking off.

Reports the per-turn work outside generation (retrieve + budget + save, from each turn's
trace) as medians over turns 51-100, 451-500 and 951-1,000 (goal: the last at most 1.5x
the first), resident memory at turns 200, 500 and 1,000 (goal: 1,000 at most 1.1x 200),
and each campaign file's bytes per turn over turns 1-200, 201-500 and 501-1,000 (a
constant band means no file grows faster than the story)."""

from __future__ import annotations

import os
import random
import resource
from pathlib import Path

from bench.common import Session, median, scripted_actions, table
from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator

TURNS = 1000
WINDOW = 50  # turns per overhead median
MARKS = (200, 500, 1000)  # turns at which RSS and file sizes are taken
OVERHEAD = ("retrieve", "budget", "save")
WORDS = ["lantern", "river", "stranger", "ember", "forge", "tower", "key", "map", "storm",
         "well", "door", "bridge", "raven", "salt", "ash", "bell", "rope", "coin", "song",
         "mountain", "harbor", "crow", "thorn", "glass", "moss"]


def replies(count: int = 97, seed: int = 16) -> list[str]:
    """Varied narrations (a prime count, so they never line up with the actions)."""
    rng = random.Random(seed)
    return [" ".join(["The", *rng.sample(WORDS, 12)]).capitalize() + "." for _ in range(count)]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def file_sizes(folder: Path) -> dict[str, int]:
    """Bytes of each top-level file and of each folder as a whole."""
    sizes = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        sizes[path.name + ("" if path.is_file() else "/")] = sum(p.stat().st_size
                                                                 for p in files)
    return sizes


def soak(turns: int = TURNS, marks: tuple[int, ...] = MARKS) -> dict:
    session = Session.new(extractor_model="off", seed=1)
    game = open_game(session.settings, session.name, ScriptedNarrator(replies=replies()))
    overhead, rss, sizes = {}, {}, {}
    try:
        for number, action in enumerate(scripted_actions(turns), start=1):
            reply = game.submit(action)
            game.settle(reply)
            timings = reply.trace.timings_ms
            overhead[number] = sum(timings[stage] for stage in OVERHEAD)
            if number in marks:
                rss[number] = rss_mb()
                sizes[number] = file_sizes(game.campaign.path)
    finally:
        game.close()
    return {"overhead": overhead, "rss": rss, "sizes": sizes,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def windows(turns: int) -> list[tuple[int, int]]:
    middle = turns // 2
    return [(51, 100), (middle - WINDOW + 1, middle), (turns - WINDOW + 1, turns)]


def report(result: dict, turns: int = TURNS) -> str:
    overhead, rss, sizes = result["overhead"], result["rss"], result["sizes"]
    spans = windows(turns)
    medians = [median(overhead[n] for n in range(first, last + 1)) for first, last in spans]
    marks = sorted(rss)
    rows = [[f"turns {first}-{last}", f"{value:.1f}"] for (first, last), value
            in zip(spans, medians, strict=True)]
    growth = medians[-1] / medians[0] if medians[0] else 0.0
    rss_growth = rss[marks[-1]] / rss[marks[0]]
    starts = [0, *marks[:-1]]
    spans_of_sizes = list(zip(starts, marks, strict=True))
    return "\n".join([
        "## Soak",
        "",
        f"A {turns:,}-turn headless game with the scripted narrator (canned replies: the "
        "model is beside the point) and the real story memory (embedder, embedded Chroma, "
        "FTS5), note-taking off, each turn's background work settled before the next.",
        "",
        "Work outside generation per turn (retrieve + budget + save), median in ms:",
        "",
        table(["", "ms"], rows),
        "",
        f"Last window / first: **{growth:.2f}** (goal <= 1.5). Resident memory: "
        + ", ".join(f"{rss[mark]:.0f} MB at turn {mark}" for mark in marks)
        + f"; turn {marks[-1]} / turn {marks[0]}: **{rss_growth:.2f}** (goal <= 1.1); "
        f"peak {result['peak_mb']:.0f} MB.",
        "",
        "Bytes per turn of each file of the campaign:",
        "",
        table(["file", *(f"turns {start + 1}-{end}" for start, end in spans_of_sizes)],
              bytes_per_turn(sizes, spans_of_sizes)),
    ])


def bytes_per_turn(sizes: dict[int, dict[str, int]], spans: list[tuple[int, int]],
                   ) -> list[list[str]]:
    """Per file: how many bytes it grew by per turn over each span of turns."""
    names = sorted(set().union(*sizes.values()))
    rows = []
    for name in names:
        grown = [(sizes[end].get(name, 0) - sizes.get(start, {}).get(name, 0)) / (end - start)
                 for start, end in spans]
        rows.append([name, *(f"{value:.0f}" for value in grown)])
    return rows


def run() -> str:
    return report(soak())
