"""Time to first token against the turn number: the stable-prefix layout versus the
naive one that puts retrieved memories first (which breaks llama.cpp's prefix reuse).
Both tell the coherence session's story (bench/coherence.py): the stable layout as the
model played it, the naive one replayed with its prompts evaluated on the timed turns."""

from __future__ import annotations

from bench.coherence import SETTINGS, TTFT_CHECKPOINTS, TTFT_WINDOW, played, timed_turns
from bench.common import BENCH_DIR, median, table

LAYOUTS = ("stable", "memories-first")


def ttfts(layout: str) -> dict[int, float]:
    """The first token's latency by turn number (the timed turns of a replay)."""
    traces = played(layout).traces.values()
    timed = None if layout == "stable" else timed_turns()
    return {trace.turn: trace.timings_ms["ttft"] for trace in traces
            if timed is None or trace.turn in timed}


def window(values: dict[int, float], turn: int) -> float:
    """Median of the turns ending at `turn`: one of them may be a summary turn."""
    return median(values[t] for t in range(turn - TTFT_WINDOW + 1, turn + 1) if t in values)


def plot(results: dict[str, list[float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    for layout, values in results.items():
        turns = sorted(values)
        style = {"linewidth": 0.8} if layout == "stable" else {"linestyle": "", "marker": "."}
        axes.plot(turns, [values[t] for t in turns], label=layout, **style)
    axes.set_xlabel("turn")
    axes.set_ylabel("time to first token (ms)")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    path = BENCH_DIR / "ttft.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def run() -> str:
    results = {layout: ttfts(layout) for layout in LAYOUTS}
    turns = max(results["stable"])
    checkpoints = [c for c in TTFT_CHECKPOINTS if c <= turns]
    late = 200 if 200 in checkpoints else checkpoints[-1]  # the goal compares 200 with 10
    rows = [[layout] + [f"{window(values, c):.0f}" for c in checkpoints]
            + [f"{window(values, late) / window(values, 10):.2f}"]
            for layout, values in results.items()]
    ratio = window(results["stable"], late) / window(results["stable"], 10)
    return "\n".join([
        "## Time to first token (ms) by turn",
        "",
        f"The coherence session's {turns} narrated turns: embedded model, n_ctx "
        f"{SETTINGS['n_ctx']}, max_tokens {SETTINGS['max_tokens']}, seed {SETTINGS['seed']}. "
        f"Each figure is the median of the {TTFT_WINDOW} turns ending there (a summary turn "
        "re-evaluates everything after the pinned facts); a retried answer's TTFT is its "
        "first attempt's. The memories-first layout replays the same story "
        f"({played('memories-first').minutes:.1f} min).",
        "",
        table(["layout"] + [f"turn {c}" for c in checkpoints] + [f"turn {late} / turn 10"],
              rows),
        "",
        f"Goal: TTFT(turn 200) / TTFT(turn 10) <= 1.5 with the stable layout: turn {late} / "
        f"turn 10 = **{ratio:.2f}** ({'met' if 0 < ratio <= 1.5 else 'missed'}"
        f"{'' if late == 200 else ', a short run'}).",
        "",
        f"![TTFT by turn]({plot(results)})",
    ])
