"""test_summary with the real embedded model (moved from tests/integration/)."""
import json
import subprocess
import sys

from support import RecordingNarrator, common_prefix

from storyteller.context.summary import SUMMARIES_FILE, Summarizer, Summary, SummaryLog
from storyteller.engine.session import open_game
from storyteller.storage.transcript import Turn


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


def test_the_next_summary_is_read_ahead_so_only_its_writing_is_left(tmp_path, settings,
                                                                   real_narrator):
    """Below the high mark, each turn recorded makes the summaries' own context read the
    next summary's prompt so far; the summary that comes due then starts from it."""
    turns = [Turn(i, f"walk to the {place}", f"You reach the {place}. " * 12)
             for i, place in enumerate(("well", "mill", "forge", "chapel", "bridge"), 1)]
    recorded: list[Turn] = []
    recorder = StatsRecorder(real_narrator)
    summarizer = Summarizer(recorder, settings.prompts_dir, SummaryLog(tmp_path),
                            turns=lambda: recorded, caps=lambda: (10_000, 120), warm=True)
    for turn in turns[:4]:
        recorded.append(turn)
        summarizer.record(turn)  # far under the high mark: read ahead only
        summarizer.settle()
    ahead = summarizer._prompt(summarizer._source_text(Summary(), turns[:4]), 120).tokens
    assert real_narrator.cached_tokens()[:len(ahead)] == ahead
    assert recorder.sent == []  # nothing was written
    summarizer.caps = lambda: (200, 120)  # now the history is over the high mark
    recorded.append(turns[4])
    summarizer.record(turns[4])
    summarizer.settle()
    assert summarizer.summaries.current.through_turn == 4
    assert recorder.sent[0] == ahead  # the turns it covers were all read ahead
    assert recorder.stats[0].evaluated_tokens <= 1  # only the last token's logits


class StatsRecorder(RecordingNarrator):
    def __init__(self, inner):
        super().__init__(inner)
        self.stats = []

    def stream(self, prompt, options, cancel, stats, *args, **kwargs):
        self.stats.append(stats)
        return super().stream(prompt, options, cancel, stats, *args, **kwargs)


def test_a_summary_without_a_context_of_its_own_never_reads_ahead(tmp_path, settings,
                                                                  real_narrator):
    summarizer = Summarizer(real_narrator, settings.prompts_dir, SummaryLog(tmp_path),
                            turns=lambda: [Turn(1, "look", "A door.")],
                            caps=lambda: (10_000, 120))
    before = real_narrator.cached_tokens()
    summarizer.record(Turn(1, "look", "A door."))
    summarizer.settle()
    assert real_narrator.cached_tokens() == before
