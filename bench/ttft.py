"""Time to first token against the turn number: the stable-prefix layout versus the
naive one that puts retrieved memories first (which breaks llama.cpp's prefix reuse)."""

from __future__ import annotations

import os

from bench.common import BENCH_DIR, Session, median, scripted_actions, table

CHECKPOINTS = (10, 50, 100, 200, 300)
# Extraction off: it runs after the turn, off the measured path, and would only make the
# run longer. Story passages and world lore are still recalled every turn.
SETTINGS = {"n_ctx": 2048, "max_tokens": 32, "seed": 11, "extractor_model": "off"}


def run_layout(layout: str, turns: int) -> list[float]:
    session = Session.new(prompt_layout=layout, **SETTINGS)
    return [trace.timings_ms["ttft"] for trace in session.play(scripted_actions(turns))]


def window(ttfts: list[float], turn: int) -> float:
    """Median of the ten turns ending at `turn`: one turn may be a summary turn."""
    return median(ttfts[max(turn - 10, 0):turn])


def plot(results: dict[str, list[float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    for layout, ttfts in results.items():
        axes.plot(range(1, len(ttfts) + 1), ttfts, label=layout, linewidth=0.8)
    axes.set_xlabel("turn")
    axes.set_ylabel("time to first token (ms)")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    path = BENCH_DIR / "ttft.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def run(turns: int = int(os.environ.get("BENCH_TTFT_TURNS", "300"))) -> str:
    """BENCH_TTFT_TURNS shortens the run (e.g. 60) for a quick look."""
    results = {layout: run_layout(layout, turns) for layout in ("stable", "memories-first")}
    checkpoints = [c for c in CHECKPOINTS if c <= turns] or [turns]
    late = 200 if turns >= 200 else checkpoints[-1]  # the goal compares turn 200 to turn 10
    rows = [[layout] + [f"{window(ttfts, c):.0f}" for c in checkpoints]
            + [f"{window(ttfts, late) / window(ttfts, 10):.2f}"]
            for layout, ttfts in results.items()]
    ratio = window(results["stable"], late) / window(results["stable"], 10)
    image = plot(results)
    return "\n".join([
        "## Time to first token (ms) by turn",
        "",
        f"Embedded model, n_ctx {SETTINGS['n_ctx']}, max_tokens {SETTINGS['max_tokens']}, "
        f"seed {SETTINGS['seed']}, {turns} scripted turns per layout; each figure is the "
        "median of the ten turns ending there.",
        "",
        table(["layout"] + [f"turn {c}" for c in checkpoints]
              + [f"turn {late} / turn 10"], rows),
        "",
        f"Goal: TTFT(turn 200) / TTFT(turn 10) <= 1.5 with the stable layout: turn {late} / "
        f"turn 10 = **{ratio:.2f}** "
        f"({'met' if 0 < ratio <= 1.5 else 'missed'}{'' if late == 200 else ', a short run'}).",
        "",
        f"![TTFT by turn]({image})",
    ])
