"""End to end with the real embedded model: `storyteller run` plays a short story in
which the narrator's model also extracts facts after every turn; then the index is
deleted and `storyteller reindex` rebuilds it. Asserts on structure and facts, never on
the wording of one sample."""

import json
import shutil

import pytest
from support import run_cli

from storyteller.text import normalize_name

PIN = "Maren promised to forge me a sword"


@pytest.mark.model
def test_a_story_with_real_extraction_recall_and_reindex(tmp_path):
    script = tmp_path / "story.txt"
    script.write_text(f"look around\nask Maren about the Ember Stone\n/remember {PIN}\n"
                      "give Maren my silver ring\n/memory\n")
    trace = tmp_path / "trace.jsonl"
    result = run_cli("run", "--campaign", "real", "--script", str(script), "--trace", str(trace),
                     "--seed", "5", "--max-tokens", "40", "--n-ctx", "2048",
                     "--extractor-model", "embedded", cwd=tmp_path)  # off by default: 135M
    assert result.returncode == 0, result.stderr
    assert "The story remembers" in result.stderr and "character-maren-holt" in result.stderr

    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["turn"] for r in records] == [1, 2, 3]
    for record in records:
        assert record["timings_ms"]["extract"] > 0  # this turn's extraction, measured
        assert record["timings_ms"]["retrieve"] > 0
        for item in record["retrieved"]:
            assert item["text"] in record["prompt"]
    # what the action names is in the prompt: in the scene's block already (found then
    # by keyword and meaning: "both"), or by keyword for this turn
    retrieved = {item["id"]: item["via"] for item in records[1]["retrieved"]}
    assert {"character-maren-holt", "item-ember-stone"} <= set(retrieved)
    assert {retrieved["character-maren-holt"], retrieved["item-ember-stone"]} <= {"keyword",
                                                                                 "both"}
    pinned = [item["text"] for item in records[2]["retrieved"] if item["via"] == "pinned"]
    assert PIN in pinned

    folder = tmp_path / "saves" / "real"
    journal = [json.loads(line) for line in (folder / "memories.jsonl").read_text().splitlines()]
    assert [r["turn"] for r in journal if r["type"] == "extracted"] == [1, 2, 3]
    turns = {t["number"]: t for t in map(json.loads, (folder / "transcript.jsonl").open())}
    for record in journal:
        if record["type"] in ("add", "change") and record["turn"]:
            assert record["entry"]["source"] == "notes"  # never the world's entries
            said = normalize_name(f"{turns[record['turn']]['input']} "
                                  f"{turns[record['turn']]['output']}")
            names = [record["entry"]["name"], *record["entry"]["aliases"]]
            assert any(normalize_name(name) in said for name in names)  # no invented names

    shutil.rmtree(folder / "memory")
    rebuilt = run_cli("reindex", "--campaign", "real", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Reindexed" in rebuilt.stdout and "100%" in rebuilt.stderr
