"""test_summary with the real embedded model (moved from tests/integration/)."""
import json
import subprocess
import sys

from support import RecordingNarrator, common_prefix

from storyteller.context.summary import SUMMARIES_FILE
from storyteller.engine.session import open_game


def test_consecutive_turns_share_the_prompt_prefix(settings, real_narrator):
    recorder = RecordingNarrator(real_narrator)
    game = open_game(settings, "prefix", recorder)
    game.submit("look around")
    first = game.submit("ask Maren about the stone").trace
    game.submit("search the forge")
    stable = sum(s["tokens"] for s in first.sections
                 if s["name"] in ("system", "pinned", "summary", "history"))
    history = next(s["tokens"] for s in first.sections if s["name"] == "history")
    assert history > 0
    shared = common_prefix(recorder.sent[1], recorder.sent[2])
    # Only the volatile sections (memories, input) may differ: here, with no memories,
    # the whole first prompt is reused, since its input became the next turn's history.
    assert shared >= stable
    assert len(recorder.sent[2]) > len(recorder.sent[1])


def test_300_turns_at_a_small_context_never_overflow(tmp_path):
    """Note-taking is off: it is not what this tests, and it would triple the time."""
    actions = ["look around", "go north", "ask the stranger her name", "open the chest",
               "light a torch", "wait and listen", "climb the wall", "follow the river"]
    script = tmp_path / "long.txt"
    script.write_text("\n".join(actions[i % len(actions)] for i in range(300)) + "\n")
    trace = tmp_path / "t.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "storyteller", "run", "--campaign", "long", "--script",
         str(script), "--trace", str(trace), "--seed", "3", "--n-ctx", "1024",
         "--max-tokens", "48", "--extractor-model", "off"], cwd=tmp_path,
        capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len(records) == 300
    assert all(r["prompt_tokens"] + r["max_tokens"] <= r["n_ctx"] == 1024 for r in records)
    summary_tokens = [next(s["tokens"] for s in r["sections"] if s["name"] == "summary")
                      for r in records]
    first_summary = next(i for i, tokens in enumerate(summary_tokens) if tokens > 0)
    # once the history no longer fits, a summary appears (with the prefill, a summary
    # reaches the prompts once prefilled, or once the layout in use no longer fits)
    assert first_summary < 60
    dropped = [next(s["dropped"] for s in r["sections"] if s["name"] == "history")
               for r in records]
    assert not any(dropped[:first_summary])  # no turn left out for want of a summary
    assert (tmp_path / "saves" / "long" / SUMMARIES_FILE).exists()
