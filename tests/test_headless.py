"""`storyteller run` end to end, in a subprocess, with the real embedded model."""

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args, cwd, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "storyteller", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.model
def test_scripted_run_prints_traces_and_continues(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("look around\n\nask the blacksmith about the fire\nwalk to the well\n")
    trace = tmp_path / "t.jsonl"
    args = ["run", "--campaign", "demo", "--script", str(script), "--trace", str(trace),
            "--seed", "1", "--max-tokens", "40", "--extractor-model", "off"]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["turn"] for r in records] == [1, 2, 3]
    # each narration is printed, in order (a narration may hold blank lines itself)
    printed = [first.stdout.index(r["output"]) for r in records]
    assert printed == sorted(printed)
    for record in records:
        assert record["output"].strip()
        assert record["prompt_tokens"] > 0 and record["n_ctx"] > 0
        assert record["max_tokens"] == 40 and 0 < record["completion_tokens"] <= 40
        assert record["prompt_tokens"] + record["max_tokens"] <= record["n_ctx"]
        assert sum(s["tokens"] for s in record["sections"]) == record["prompt_tokens"]
        for item in record["retrieved"]:  # the world's lore, recalled (test_memory*.py)
            assert set(item) == {"id", "kind", "text", "score", "via"}
        assert record["timings_ms"]["generate"] >= record["timings_ms"]["ttft"] > 0
        assert record["input"] in record["prompt"]
    # the previous turn is in the next prompt
    assert records[0]["output"] in records[1]["prompt"]
    assert (tmp_path / "saves" / "demo" / "transcript.jsonl").exists()

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["turn"] for r in records] == [1, 2, 3, 4, 5, 6]


@pytest.mark.model
def test_saves_dir_from_environment(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("look\n")
    result = run_cli("run", "--campaign", "env", "--script", str(script), "--max-tokens", "8",
                     cwd=tmp_path, env_extra={"STORYTELLER_SAVES_DIR": str(tmp_path / "elsewhere")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "env" / "campaign.json").exists()
    assert not (tmp_path / "saves").exists()


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
