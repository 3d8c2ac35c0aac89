"""test_headless with the real embedded model (moved from tests/integration/)."""
import json

from support import run_cli


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
            assert set(item) == {"id", "kind", "text", "score", "via", "section"}
        timings = record["timings_ms"]
        assert timings["ttft"] >= timings["retrieve"] + timings["budget"]
        assert timings["generate"] >= timings["decode"] > 0
        assert 0 < record["evaluated_tokens"] <= record["prompt_tokens"]
        assert record["input"] in record["prompt"]
    # the previous turn is in the next prompt
    assert records[0]["output"] in records[1]["prompt"]
    assert (tmp_path / "saves" / "demo" / "transcript.jsonl").exists()

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["turn"] for r in records] == [1, 2, 3, 4, 5, 6]


def test_saves_dir_from_environment(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("look\n")
    result = run_cli("run", "--campaign", "env", "--script", str(script), "--max-tokens", "8",
                     cwd=tmp_path, env_extra={"STORYTELLER_SAVES_DIR": str(tmp_path / "elsewhere")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "env" / "campaign.json").exists()
    assert not (tmp_path / "saves").exists()
