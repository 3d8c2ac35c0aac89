"""The rolling summary and long sessions that never overflow."""

import json
import subprocess
import sys

import pytest

from storyteller.campaign import Turn
from storyteller.context.summary import SUMMARIES_FILE, Summarizer, Summary, SummaryLog
from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator

LONG_REPLY = ("The rain keeps falling on the old stones. A crow watches from the gate. "
              "Somewhere a bell rings twice.")


def test_summary_log_records_invalidates_and_survives_a_torn_line(tmp_path):
    log = SummaryLog(tmp_path)
    log.record(Summary("First part.", 4))
    log.record(Summary("First and second part.", 9))
    log.invalidate_from(7)
    assert log.current == Summary("First part.", 4)
    with open(tmp_path / SUMMARIES_FILE, "a") as file:
        file.write('{"type": "summary", "text": "tor')
    assert SummaryLog(tmp_path).current == Summary("First part.", 4)


def test_watermarks_evict_the_oldest_turns_down_to_the_low_mark(tmp_path, settings):
    narrator = ScriptedNarrator()
    summarizer = Summarizer(narrator, settings.prompts_dir, SummaryLog(tmp_path))
    turns = [Turn(i, "wait", "word " * 20) for i in range(1, 11)]
    assert summarizer.turn_tokens(turns[0]) == 31  # 1 + 20 words + template overhead
    assert summarizer.turns_to_evict(turns[:7], history_cap=320) == []  # 217 <= 0.7 * 320
    evicted = summarizer.turns_to_evict(turns, history_cap=320)  # 310 > 224
    assert [t.number for t in evicted] == [1, 2, 3, 4, 5, 6, 7]  # 93 left <= 0.35 * 320


def test_a_summary_longer_than_its_source_is_rejected(tmp_path, settings):
    wordy = ScriptedNarrator(replies=["word " * 300])
    summarizer = Summarizer(wordy, settings.prompts_dir, SummaryLog(tmp_path))
    assert summarizer.summarize_text("> look\nA door.", summary_cap=400) is None


def test_no_room_for_a_summary_is_no_summary_not_an_error(tmp_path, settings):
    narrator = ScriptedNarrator(replies=["A short summary."])
    summarizer = Summarizer(narrator, settings.prompts_dir, SummaryLog(tmp_path))
    source = "> look\nA door opens onto a long corridor lit by torches. " * 5
    assert summarizer.summarize_text(source, summary_cap=0) is None
    assert summarizer.summarize_text(source, summary_cap=40) == "A short summary."


def play_scripted(settings, turns, n_ctx=700, replies=None):
    narrator = ScriptedNarrator(replies=replies or [LONG_REPLY], n_ctx=n_ctx)
    game = open_game(settings, "long", narrator)
    traces = [game.submit(f"walk to place number {i}").trace for i in range(turns)]
    game.summarizer.wait()
    return game, traces


def test_long_scripted_session_fits_and_summarizes(settings):
    game, traces = play_scripted(settings, 60)
    assert all(t.prompt_tokens + t.max_tokens <= t.n_ctx for t in traces)
    summary = game.summarizer.summaries.current
    assert summary.through_turn > 0 and summary.text
    sections = {s["name"]: s for s in traces[-1].sections}
    assert sections["summary"]["tokens"] > 0
    assert f"walk to place number {summary.through_turn - 1}\n" not in traces[-1].prompt
    # history never needed an emergency drop: the summary kept it in its share
    assert all(next(s for s in t.sections if s["name"] == "history")["dropped"] == 0
               for t in traces)


def test_undo_of_a_summarized_turn_invalidates_the_summary(settings):
    game, _ = play_scripted(settings, 30)
    through = game.summarizer.summaries.current.through_turn
    assert through > 0
    while game.campaign.turns and game.campaign.turns[-1].number >= through:
        game.undo()
    assert game.summarizer.summaries.current.through_turn < through


class RecordingNarrator:
    """Passes everything to the real narrator and keeps the token lists it was sent."""

    def __init__(self, inner):
        self.inner = inner
        self.sent = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, prompt, *args, **kwargs):
        self.sent.append(list(prompt.tokens))
        return self.inner.stream(prompt, *args, **kwargs)


def common_prefix(a, b):
    length = 0
    while length < min(len(a), len(b)) and a[length] == b[length]:
        length += 1
    return length


@pytest.mark.model
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


@pytest.mark.model
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
    assert first_summary < 30  # once history no longer fits, a summary appears
    assert (tmp_path / "saves" / "long" / SUMMARIES_FILE).exists()
