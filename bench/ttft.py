"""Time to first token from Enter, with and without the prefill: one seeded session in
the coherence benchmark's world (bench/coherence.py, its script of actions), played
in-process by `storyteller run`'s own loop with the embedded model at n_ctx 2048, the
default max_tokens and note-taking, and a reading player's think time after each turn.

Reported over the first and the last 40 turns: TTFT p50/p95 (from Enter: recall and
budgeting included), the prompt tokens evaluated after Enter (p50), the share of turns
the loop guard told again, and how many turns got their notes. BENCH_TTFT_TURNS=40 plays
a short session (its windows are then its first and last halves)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.coherence import WORLD, load_story, prompts_dir
from bench.common import median, percentile, table
from storyteller.config import Settings
from storyteller.headless import run_script
from storyteller.memory.journal import JOURNAL_FILE
from storyteller.storage.durable import read_jsonl

TURNS = 220
WINDOW = 40
THINK_SECONDS = 3.0
SETTINGS = {"n_ctx": 2048, "seed": 11, "world": WORLD}  # max_tokens and notes: defaults
VARIANTS = {"prefill": True, "no prefill": False}
CAMPAIGN = "ttft"


@dataclass
class Played:
    traces: list[dict]
    noted_turns: int
    minutes: float

    def window(self, first: int, last: int) -> list[dict]:
        return [trace for trace in self.traces if first <= trace["turn"] <= last]


def play(prefill: bool, turns: int) -> Played:
    saves = Path(tempfile.mkdtemp(prefix="storyteller-ttft-"))
    script, trace_path = saves / "script.txt", saves / "trace.jsonl"
    actions = [a for a in load_story()[0] if not a.startswith("/")][:turns]
    script.write_text("\n".join(actions) + "\n", encoding="utf-8")
    settings = Settings(saves_dir=saves, prompts_dir=prompts_dir(), prefill=prefill, **SETTINGS)
    logging.getLogger("storyteller").setLevel(logging.ERROR)  # skipped notes: not for here
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the narration: not for the report
        run_script(settings, CAMPAIGN, script, trace_path, THINK_SECONDS)
    journal = read_jsonl(saves / CAMPAIGN / JOURNAL_FILE)
    noted = {record["turn"] for record in journal if record.get("type") == "extracted"}
    return Played(read_jsonl(trace_path), len(noted), (time.perf_counter() - started) / 60)


def windows(turns: int) -> tuple[tuple[int, int], tuple[int, int]]:
    size = min(WINDOW, turns // 2)
    return (1, size), (turns - size + 1, turns)


def figures(traces: list[dict]) -> dict[str, float]:
    ttft = [trace["timings_ms"]["ttft"] for trace in traces]
    return {"p50": median(ttft), "p95": percentile(ttft, 0.95),
            "evaluated": median(trace["evaluated_tokens"] for trace in traces)}


def run() -> str:
    turns = int(os.environ.get("BENCH_TTFT_TURNS", TURNS))
    early, late = windows(turns)
    played = {name: play(prefill, turns) for name, prefill in VARIANTS.items()}
    rows, verdicts = [], []
    for name, result in played.items():
        first, last = figures(result.window(*early)), figures(result.window(*late))
        retold = sum(trace["attempts"] > 1 for trace in result.traces) / len(result.traces)
        rows.append([name, f"{first['p50']:.0f}", f"{first['p95']:.0f}",
                     f"{first['evaluated']:.0f}", f"{last['p50']:.0f}", f"{last['p95']:.0f}",
                     f"{last['evaluated']:.0f}", f"{last['p50'] / first['p50']:.2f}",
                     f"{retold:.0%}", f"{result.noted_turns}/{len(result.traces)}",
                     f"{result.minutes:.1f}"])
        if name == "prefill":
            verdicts = goals(first, last, retold)
    span = lambda window: f"turns {window[0]}-{window[1]}"  # noqa: E731
    return "\n".join([
        "## Time to first token from Enter, with and without the prefill",
        "",
        f"One seeded {turns}-turn session (the coherence world and script), embedded "
        f"model, n_ctx {SETTINGS['n_ctx']}, max_tokens 160, note-taking as the game defaults it "
        "(off under 1B parameters), "
        f"{THINK_SECONDS:g} s think time after each turn (as `storyteller run "
        "--think-time`). TTFT runs from Enter (recall and budgeting included) to the "
        "first token, in ms; `evaluated` is the prompt tokens not already in the cache.",
        "",
        table(["layout", f"{span(early)} p50", "p95", "evaluated p50", f"{span(late)} p50",
               "p95", "evaluated p50", "late / early p50", "retold", "noted turns",
               "minutes"], rows),
        "",
        *verdicts,
    ])


def goals(first: dict[str, float], last: dict[str, float], retold: float) -> list[str]:
    checks = [("TTFT p50 late <= 500 ms", last["p50"] <= 500),
              ("p95 <= 2 x p50 late", last["p95"] <= 2 * last["p50"]),
              ("evaluated p50 late <= 80", last["evaluated"] <= 80),
              ("late p50 <= 1.5 x early p50", last["p50"] <= 1.5 * first["p50"]),
              ("retold <= 10%", retold <= 0.10)]
    return ["Goals with the prefill: " + "; ".join(
        f"{label}: {'met' if met else 'missed'}" for label, met in checks) + "."]
