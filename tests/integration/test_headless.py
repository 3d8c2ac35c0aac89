"""`storyteller run` end to end, in a subprocess, with the real embedded model."""


import json
import time

import pytest
from support import run_cli


def test_help_lists_commands_and_flags(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for word in ("run", "worlds", "--campaign", "--model", "--seed", "--saves-dir"):
        assert word in result.stdout
    run_help = run_cli("run", "--help", cwd=tmp_path).stdout
    for word in ("--script", "--trace", "--max-tokens", "--n-ctx"):
        assert word in run_help


@pytest.mark.parametrize(("args", "expected"), [
    (["--campaign", "../../x"], "Invalid campaign name '../../x'"),
    (["--model", "nowhere.gguf"], "Model 'nowhere.gguf' not found: not a preset"),
    (["--model", "llama-3.2-1b"], "put Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
    (["--world", "atlantis"], "No world named 'atlantis'"),
    (["--max-tokens", "0"], "invalid --max-tokens"),
    (["--think-time", "-1"], "--think-time must be 0 or more seconds, not -1"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, expected):
    script = tmp_path / "s.txt"
    script.write_text("look\n")
    base = ["run", "--campaign", "c", "--script", str(script)]
    result = run_cli(*base, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("../../x"))


def test_corrupt_model_file_is_one_clear_line(tmp_path):
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"GGUF" + b"\x00" * 64)
    script = tmp_path / "s.txt"
    script.write_text("look\n")
    result = run_cli("run", "--campaign", "c", "--script", str(script), "--model", str(fake),
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "Cannot load model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_worlds_are_listed(tmp_path):
    result = run_cli("worlds", cwd=tmp_path)
    assert "emberfall" in result.stdout.split()


def test_think_time_plays_on_and_writes_each_trace_line_with_its_own_figures(tmp_path):
    """Note-taking on (the scripted backend's own extractor): each line's `extract` is its
    turn's memory writing, and the lines come in turn order."""
    script = tmp_path / "s.txt"
    script.write_text("look around\nwalk to the well\n/undo\nwalk to the inn\n")
    trace = tmp_path / "t.jsonl"
    started = time.perf_counter()
    result = run_cli("run", "--campaign", "c", "--script", str(script), "--trace", str(trace),
                     "--backend", "scripted", "--think-time", "0.4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started >= 4 * 0.4
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["turn"], r["input"]) for r in records] == [
        (1, "look around"), (2, "walk to the well"), (2, "walk to the inn")]
    assert all(r["timings_ms"]["extract"] > 0 for r in records)
