"""Crash tests: a headless `storyteller run` is killed with SIGKILL at random moments
(fixed seed). After every kill the campaign loads, its transcript holds every turn the
run had completed (each completed turn is in the run's trace, written after the turn was
saved), and the next run continues from there: the trials form one long story.

Most trials use the scripted backend (STORYTELLER_BACKEND=scripted, with a delay per
word) so that a kill often lands in the middle of a save; a few use the real model."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storyteller.storage.campaign import Campaign
from storyteller.storage.transcript import TRANSCRIPT_FILE

SEED = 20261122
SCRIPTED_TRIALS = 30
MODEL_TRIALS = 3


def script_lines(count: int) -> list[str]:
    """Actions, with a checkpoint now and then (a kill may land inside /save too)."""
    return [f"/save cp-{i}" if i % 7 == 6 else f"step {i} toward the forge"
            for i in range(count)]


def run_and_kill(tmp_path: Path, trial: int, after_turns: int, delay: float,
                 env_extra: dict, extra_args: list[str]) -> tuple[Path, bool]:
    """Start a run; once it has saved after_turns more records, wait delay seconds more
    and SIGKILL it. (Counting saves first keeps the kill moments spread over the whole
    turn even when the machine is slow; the trace would not do: its lines wait for each
    turn's memory writing, which a fast scripted run outpaces.) Returns the trace and
    whether the kill landed."""
    script = tmp_path / "script.txt"
    trace = tmp_path / f"trace-{trial}.jsonl"
    transcript = tmp_path / "saves" / "crash" / TRANSCRIPT_FILE
    saved_before = saved_records(transcript)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **env_extra}
    process = subprocess.Popen(
        [sys.executable, "-m", "storyteller", "run", "--campaign", "crash", "--script",
         str(script), "--trace", str(trace), *extra_args],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while saved_records(transcript) - saved_before < after_turns and process.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    time.sleep(delay)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return trace, killed


def saved_records(transcript: Path) -> int:
    return transcript.read_bytes().count(b"\n") if transcript.exists() else 0


def traced_turns(trace: Path) -> list[tuple]:
    """The turns in a run's trace; a line the kill cut short is not a complete turn."""
    data = trace.read_bytes() if trace.exists() else b""
    complete = data[: data.rfind(b"\n") + 1].decode().splitlines()
    return [(r["turn"], r["input"], r["output"]) for r in map(json.loads, complete)]


def check_campaign(saves: Path, before: list[tuple], trace: Path) -> list[tuple]:
    """The campaign loads; nothing from earlier runs is lost; every turn this run traced
    (so had completed) is there. (A trace line is written once its turn's memory writing
    is timed, so the transcript may hold turns the trace had not reached.)"""
    campaign = Campaign.load(saves, "crash")
    turns = [(t.number, t.input, t.output) for t in campaign.turns]
    assert turns[:len(before)] == before
    new, traced = turns[len(before):], traced_turns(trace)
    assert new[:len(traced)] == traced
    assert [number for number, _, _ in turns] == list(range(1, len(turns) + 1))
    assert all(checkpoint.turns >= 0 for checkpoint in campaign.checkpoints())
    return turns


def play_to_the_end(tmp_path, env_extra, extra_args, before):
    (tmp_path / "script.txt").write_text("one more step\nand another\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **env_extra}
    result = subprocess.run(
        [sys.executable, "-m", "storyteller", "run", "--campaign", "crash", "--script",
         "script.txt", *extra_args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr
    turns = [(t.number, t.input) for t in Campaign.load(tmp_path / "saves", "crash").turns]
    assert turns == [(n, i) for n, i, _ in before] + [
        (len(before) + 1, "one more step"), (len(before) + 2, "and another")]


def run_trials(tmp_path, trials, most_turns, delays, env_extra, extra_args, lines):
    """Chained trials on one campaign; returns its turns, the kills, the turns awaited."""
    (tmp_path / "script.txt").write_text("\n".join(lines) + "\n")
    rng = random.Random(SEED)
    turns: list[tuple] = []
    kills = awaited = 0
    for trial in range(trials):
        after_turns = rng.randint(0, most_turns)
        trace, killed = run_and_kill(tmp_path, trial, after_turns, rng.uniform(*delays),
                                     env_extra, extra_args)
        kills += killed
        awaited += after_turns
        if (tmp_path / "saves" / "crash" / "campaign.json").exists():
            turns = check_campaign(tmp_path / "saves", turns, trace)
    play_to_the_end(tmp_path, env_extra, extra_args, turns)
    return turns, kills, awaited


def test_sigkill_at_random_moments_never_loses_a_completed_turn(tmp_path):
    scripted = {"STORYTELLER_BACKEND": "scripted", "STORYTELLER_SCRIPTED_DELAY": "0.01"}
    turns, kills, awaited = run_trials(tmp_path, SCRIPTED_TRIALS, 3, (0.0, 0.6), scripted, [],
                                       script_lines(300))
    assert kills == SCRIPTED_TRIALS  # every run was cut off somewhere
    assert len(turns) >= awaited  # and the story grew across the kills


@pytest.mark.model
def test_sigkill_with_the_real_model(tmp_path):
    turns, kills, awaited = run_trials(
        tmp_path, MODEL_TRIALS, 1, (0.0, 1.0), {},
        ["--max-tokens", "8", "--n-ctx", "512", "--seed", "3"], script_lines(100))
    assert kills == MODEL_TRIALS and len(turns) >= awaited > 0
