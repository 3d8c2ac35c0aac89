"""Narration speed through the game against raw llama-cpp-python on the same prompts,
and the game's own per-turn overhead outside generation."""

from __future__ import annotations

import multiprocessing
import os
import time

from bench.common import Session, median, scripted_actions, table
from storyteller.engine.session import open_game
from storyteller.engine.trace import TIMING_STAGES
from storyteller.narrator.registry import embedded_model_path

TURNS = 20
SETTINGS = {"n_ctx": 2048, "max_tokens": 96, "seed": 5, "temperature": 0.8}


class Recorder:
    """Wraps the narrator to keep the exact token lists the game sends."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[list[int], int]] = []  # (tokens, seed), retries included

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, prompt, options, *args, **kwargs):
        self.calls.append((list(prompt.tokens), options.seed))
        return self.inner.stream(prompt, options, *args, **kwargs)


def game_run():
    """The game's turns and, after each (once its background work is over), raw
    llama-cpp-python on the same prompts in a process of its own: plain llama-cpp-python
    with one thread computing (this process keeps the game's compute thread, and two
    threads' OpenMP teams slow each other: storyteller/compute.py). Taking turns keeps
    both under the same machine load."""
    session = Session.new(**SETTINGS)
    game = open_game(session.settings, session.name)
    recorder = Recorder(game.pipeline.narrator)
    game.pipeline.narrator = recorder  # the pipeline tells the turns
    traces, raw = [], []
    with multiprocessing.get_context("spawn").Pool(1, initializer=_load_raw) as pool:
        for action in scripted_actions(TURNS):
            told = len(recorder.calls)
            reply = game.submit(action)
            game.settle(reply)
            traces.append(reply.trace)
            raw += pool.apply(_raw_speeds, (recorder.calls[told:],))
    game.pipeline.narrator = recorder.inner
    game.close()
    return traces, raw, notes_line(game)


def notes_line(game) -> str:
    """How many turns got their notes (note-taking yields to every turn the player starts)."""
    if game.memory is None or game.memory.extractor is None:
        return "Note-taking is off in this run (the default for a narrator under 1B parameters)."
    notes = game.memory.notes
    return (f"Note-taking: {notes.noted} of {len(game.campaign.turns)} turns got their notes; "
            f"{notes.stopped} note-takings were stopped by a turn and taken again.")


_raw_llm = None  # in the raw process


def _load_raw() -> None:
    global _raw_llm
    from llama_cpp import Llama

    # Same threads as the game's narrator (llama-cpp-python's default is half the cores).
    _raw_llm = Llama(model_path=str(embedded_model_path()), n_ctx=SETTINGS["n_ctx"],
                     n_threads=os.cpu_count() or 1, verbose=False)


def _raw_speeds(calls: list[tuple[list[int], int]]) -> list[float]:
    """Decode tokens/s of plain Llama.create_completion on the token lists."""
    llm = _raw_llm
    speeds = []
    for tokens, seed in calls:
        first = last = None
        count = 0
        for _ in llm.create_completion(tokens, max_tokens=SETTINGS["max_tokens"], stream=True,
                                       temperature=SETTINGS["temperature"], top_p=0.95,
                                       top_k=40, repeat_penalty=1.1, seed=seed):
            last = time.perf_counter()
            first = first or last
            count += 1
        if count > 1:
            speeds.append((count - 1) / (last - first))
    return speeds


def run() -> str:
    traces, raw, notes = game_run()
    game_speeds = [t.tokens_per_second for t in traces if t.completion_tokens > 1]
    ratio = median(game_speeds) / median(raw)
    overhead = [t.timings_ms["retrieve"] + t.timings_ms["budget"] + t.timings_ms["save"]
                for t in traces]
    turn_ms = [o + t.timings_ms["generate"] for o, t in zip(overhead, traces, strict=True)]
    share = median(o / total for o, total in zip(overhead, turn_ms, strict=True))
    stage_rows = [[stage, f"{median(t.timings_ms[stage] for t in traces):.1f}"]
                  for stage in TIMING_STAGES]
    retried = sum(t.attempts > 1 for t in traces)
    return "\n".join([
        "## Narration speed and per-turn overhead",
        "",
        f"Embedded model, n_ctx {SETTINGS['n_ctx']}, max_tokens {SETTINGS['max_tokens']}, "
        f"{TURNS} turns; raw llama-cpp-python gets the same token lists and sampling.",
        "",
        table(["", "decode tokens/s (median)"],
              [["storyteller", f"{median(game_speeds):.1f}"],
               ["raw llama-cpp-python", f"{median(raw):.1f}"],
               ["ratio", f"**{ratio:.3f}** (goal >= 0.95: "
                         f"{'met' if ratio >= 0.95 else 'missed'})"]]),
        "",
        table(["stage", "median ms per turn"], stage_rows),
        "",
        f"Overhead outside generation (retrieve + budget + save): median **{share:.1%}** of a "
        f"turn (goal <= 5%: {'met' if share <= 0.05 else 'missed'}). Note-taking (extract) "
        "and summaries run in the background after the turn is shown and saved, while the "
        "player reads and types; the bench waits for them between turns, as a player's "
        "reading time would (no turn waits for them). The loop guard retold "
        f"{retried} of {len(traces)} answers (`generate` counts every attempt; tokens/s "
        "is the kept answer's).",
        "",
        notes,
    ])
