"""Load: 8 headless games of 30 turns at once against one `python -m llama_cpp.server`
(the embedded model) and one `chroma run`, both on 127.0.0.1 and started and stopped
here, next to one game alone on the same servers.

Each game is a `storyteller run` process of its own (a player), max_tokens 48,
note-taking off, no think time. Every action names the game's own marker word, so each
of its memories carries it: a prompt holding another game's marker is cross-talk. A
turn's latency is from Enter to the turn saved (retrieve + budget + every generation
attempt + save, from its trace line). The server answers one request at a time: the
figures show what a shared server's queue does to each player."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import median, percentile, scripted_actions, table
from storyteller.errors import StorytellerError
from storyteller.memory.chroma_server import chroma_server, free_port, wait_until_up
from storyteller.narrator.registry import embedded_model_path
from storyteller.storage.campaign import Campaign

GAMES = 8
TURNS = 30
MAX_TOKENS = 48
N_CTX = 1024  # the server's and each game's: every request is evaluated from scratch
START_TIMEOUT_S = 300
LATENCY_STAGES = ("retrieve", "budget", "generate", "save")


def marker(game: int) -> str:
    """A word no model writes by chance and no other game's marker contains."""
    return f"Zor{game}vath"


def script(game: int, turns: int) -> list[str]:
    return [f"{action}, whispering {marker(game)}" for action in scripted_actions(turns)]


@contextmanager
def llama_server(log_path: Path, n_ctx: int = N_CTX) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the embedded model until the block
    ends (always terminated). Yields its /v1 URL."""
    port = free_port()
    with open(log_path, "ab") as output:  # a pipe would fill with llama.cpp's logs
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
             "--interrupt_requests", "False"],  # shared: a new request must wait its turn
            stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(f"{url}/models", server, log_path, "llama_cpp.server", START_TIMEOUT_S)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass
class GameRun:
    game: int
    returncode: int
    recorded: int  # live turns in the campaign's transcript after the run
    latencies_ms: list[float]
    foreign_prompts: int  # prompts that hold another game's marker

    @property
    def p50(self) -> float:
        return median(self.latencies_ms)

    @property
    def p95(self) -> float:
        return percentile(self.latencies_ms, 0.95)


def start_game(folder: Path, game: int, llm_url: str, memory_url: str) -> subprocess.Popen:
    script_path = folder / f"game{game}.txt"
    script_path.write_text("\n".join(script(game, TURNS)) + "\n", encoding="utf-8")
    log = open(folder / f"game{game}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "storyteller", "run", "--campaign", f"game{game}",
         "--saves-dir", str(folder / "saves"), "--base-url", llm_url,
         "--memory-url", memory_url, "--max-tokens", str(MAX_TOKENS),
         "--n-ctx", str(N_CTX), "--extractor-model", "off", "--seed", str(game),
         "--script", str(script_path), "--trace", str(folder / f"game{game}.jsonl")],
        stdout=log, stderr=subprocess.STDOUT)


def foreign_markers(prompt: str, game: int, games: Sequence[int]) -> bool:
    return any(marker(other) in prompt for other in games if other != game)


def read_run(folder: Path, game: int, games: Sequence[int], returncode: int) -> GameRun:
    trace_path = folder / f"game{game}.jsonl"
    lines = trace_path.read_text(encoding="utf-8").splitlines() if trace_path.exists() else []
    traces = [json.loads(line) for line in lines]
    latencies = [sum(trace["timings_ms"][stage] for stage in LATENCY_STAGES)
                 for trace in traces]
    foreign = sum(foreign_markers(trace["prompt"], game, games) for trace in traces)
    return GameRun(game, returncode, recorded_turns(folder / "saves", f"game{game}"),
                   latencies, foreign)


def recorded_turns(saves: Path, name: str) -> int:
    try:
        return len(Campaign.load(saves, name, read_only=True).turns)
    except StorytellerError:  # a campaign that was never made has no turns
        return 0


def play_at_once(folder: Path, games: Sequence[int], llm_url: str,
                 memory_url: str) -> tuple[list[GameRun], float]:
    started = time.perf_counter()
    processes = {game: start_game(folder, game, llm_url, memory_url) for game in games}
    codes = {game: process.wait() for game, process in processes.items()}
    minutes = (time.perf_counter() - started) / 60
    return [read_run(folder, game, games, codes[game]) for game in games], minutes


def load(games: int = GAMES) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="storyteller-load-"))
    with llama_server(folder / "llama.log") as llm_url, \
            chroma_server(folder / "chroma", folder / "chroma.log") as memory_url:
        (folder / "alone").mkdir()
        alone, alone_minutes = play_at_once(folder / "alone", [0], llm_url, memory_url)
        crowd, crowd_minutes = play_at_once(folder, list(range(1, games + 1)), llm_url,
                                            memory_url)
    return {"alone": alone[0], "crowd": crowd, "minutes": (alone_minutes, crowd_minutes),
            "folder": folder}


def report(result: dict) -> str:
    alone, crowd = result["alone"], result["crowd"]
    rows = [[f"game {run.game}{' (alone)' if run is alone else ''}",
             f"{run.recorded}/{TURNS}", run.foreign_prompts,
             f"{run.p50:.0f}", f"{run.p95:.0f}"] for run in [alone, *crowd]]
    recorded = sum(run.recorded for run in crowd)
    foreign = sum(run.foreign_prompts for run in crowd)
    crowd_p50 = median(run.p50 for run in crowd)
    failed = [run.game for run in [alone, *crowd] if run.returncode]
    return "\n".join([
        "## Load: many players on one server",
        "",
        f"{len(crowd)} headless games of {TURNS} turns at once, each a `storyteller run` "
        "process, against one `python -m llama_cpp.server` (the embedded model, n_ctx "
        f"{N_CTX}) and one `chroma run`, both on 127.0.0.1; max_tokens {MAX_TOKENS}, "
        "note-taking off, no think time; then one game alone on the same servers "
        f"({result['minutes'][0]:.1f} min alone, {result['minutes'][1]:.1f} min for the "
        "crowd). Latency: Enter to the turn saved. Cross-talk: prompts holding another "
        "game's marker word.",
        "",
        table(["game", "turns recorded", "cross-talk prompts", "p50 ms", "p95 ms"], rows),
        "",
        f"Turns recorded: **{recorded}/{len(crowd) * TURNS}**; cross-talk: **{foreign}**"
        f"; median p50 with {len(crowd)} at once / alone: "
        f"**{crowd_p50 / alone.p50 if alone.p50 else 0:.1f}x** (the server answers one "
        "request at a time, so each player waits for the others' turns)."
        + (f" Games that exited with an error: {failed}." if failed else ""),
    ])


def run() -> str:
    return report(load())


if __name__ == "__main__":
    print(run())
