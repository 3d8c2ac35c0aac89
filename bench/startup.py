"""Cold start: launch to the first TUI frame, launch to the model ready; peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from bench.common import median, table

RUNS = 3
CHILD = """
import json, resource, sys, time
from pathlib import Path
from storyteller.config import Settings
from storyteller.tui.app import make_app

marks = {}

async def pilot(pilot):
    marks["first_frame"] = time.time()
    while pilot.app.screen.game is None:
        await pilot.pause(0.01)
    marks["model_ready"] = time.time()
    pilot.app.exit()

app = make_app(Settings(saves_dir=Path(sys.argv[1])), "startup")
app.run(headless=True, auto_pilot=pilot)
marks["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(marks))
"""


def one_start() -> dict:
    saves = tempfile.mkdtemp(prefix="storyteller-start-")
    launched = time.time()
    output = subprocess.run([sys.executable, "-c", CHILD, saves], capture_output=True,
                            text=True, check=True).stdout
    marks = json.loads(output.strip().splitlines()[-1])
    return {"first_frame": (marks["first_frame"] - launched) * 1000,
            "model_ready": (marks["model_ready"] - launched) * 1000, "rss_mb": marks["rss_mb"]}


def run() -> str:
    starts = [one_start() for _ in range(RUNS)]
    rows = [[label, f"{median(s[key] for s in starts):.0f}"] for label, key in (
        ("launch to first frame (ms)", "first_frame"),
        ("launch to model ready (ms)", "model_ready"),
        ("peak RSS (MB)", "rss_mb"))]
    return "\n".join([
        "## Cold start",
        "",
        f"The TUI in a headless terminal with the embedded model, median of {RUNS} launches.",
        "",
        table(["", "value"], rows),
    ])
