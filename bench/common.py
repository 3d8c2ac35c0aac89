"""Shared pieces of the benchmarks: machine facts, headless sessions, statistics."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from storyteller.config import Settings
from storyteller.engine.session import open_game
from storyteller.engine.trace import TurnTrace

BENCH_DIR = Path(__file__).resolve().parent
ACTIONS = ["look around", "go north", "ask the stranger her name", "open the chest",
           "light a torch", "wait and listen", "climb the wall", "follow the river",
           "search the room", "talk to the innkeeper", "rest by the fire", "read the map"]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kb = 0
    return (f"{cpu}, {os.cpu_count()} cores, {memory_kb / 1024**2:.0f} GiB RAM, "
            f"Python {platform.python_version()}, no GPU")


def percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(int(round(fraction * (len(ordered) - 1))), len(ordered) - 1)
    return ordered[index]


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else 0.0


@dataclass
class Session:
    """A headless game in a throwaway saves folder."""

    settings: Settings
    name: str = "bench"

    @classmethod
    def new(cls, **overrides) -> Session:
        saves = Path(tempfile.mkdtemp(prefix="storyteller-bench-"))
        return cls(Settings(saves_dir=saves, **overrides))

    def play(self, actions: Iterable[str], game=None) -> list[TurnTrace]:
        own = game is None
        game = game or open_game(self.settings, self.name)
        traces = []
        try:
            for action in actions:
                reply = game.submit(action)
                game.settle(reply)  # background work ends while the player reads
                if reply.trace is not None:
                    traces.append(reply.trace)
        finally:
            if own:
                game.close()
        return traces


def scripted_actions(count: int) -> list[str]:
    return [ACTIONS[i % len(ACTIONS)] for i in range(count)]


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
