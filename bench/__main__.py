"""`make bench`: run the benchmarks and write bench/RESULTS.md (plots beside it).

Usage: python -m bench [NAME ...]   (default: all, in the order of SUITES: ttft shares
coherence's session). Benchmarks report; they never fail. Named benchmarks replace
their own sections of RESULTS.md and keep the others."""

from __future__ import annotations

import importlib
import re
import sys
import time
from datetime import UTC, datetime

from bench.common import BENCH_DIR, machine

SUITES = ["speed", "ttft", "coherence", "retrieval", "startup", "soak", "load", "locomo"]


def main(names: list[str]) -> int:
    chosen = names or SUITES
    sections = []
    durations = []
    began = time.perf_counter()
    for name in chosen:
        started = time.perf_counter()
        print(f"bench: {name}...", flush=True)
        module = importlib.import_module(f"bench.{name}")
        sections.append(module.run())
        durations.append(f"{name} {(time.perf_counter() - started) / 60:.1f}")
        print(f"bench: {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    sections.append(f"Run time: {(time.perf_counter() - began) / 60:.1f} min in all "
                    f"({', '.join(durations)} min).")
    header = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, with "
        "SmolLM2-135M-Instruct Q4_1 (the embedded narrator) via llama-cpp-python, "
        "all in one `make bench` run.",
        "",
    ]
    text = "\n".join(header) + "\n\n".join(sections) + "\n"
    results = BENCH_DIR / "RESULTS.md"
    if names and results.is_file():  # a partial run: the other sections stay
        text = merge_sections(results.read_text(encoding="utf-8"), sections[:-1])
    results.write_text(text, encoding="utf-8")
    print(text)
    return 0


def merge_sections(old: str, sections: list[str]) -> str:
    """`old` with each of `sections` in place of the old section of the same "## "
    heading (or appended): the header and every other section are kept as they were."""
    blocks = re.split(r"(?m)^(?=## )", old.rstrip("\n") + "\n")
    for section in sections:
        heading = section.splitlines()[0]
        same = [i for i, block in enumerate(blocks) if block.splitlines()[:1] == [heading]]
        if same:
            blocks[same[0]] = section.rstrip("\n") + "\n\n"
        else:
            blocks[-1] = blocks[-1].rstrip("\n") + "\n\n"
            blocks.append(section.rstrip("\n") + "\n")
    return "".join(blocks).rstrip("\n") + "\n"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
