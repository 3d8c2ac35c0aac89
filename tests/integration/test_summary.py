"""The rolling summary and long sessions that never overflow."""

from support import turns

from storyteller.context.summary import SUMMARIES_FILE, Summarizer, Summary, SummaryLog
from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.transcript import Turn

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
    game.settle()
    return game, traces


def test_long_scripted_session_fits_and_summarizes(settings):
    game, traces = play_scripted(settings, 60)
    traces.append(game.submit("look back").trace)  # told with the summary written last
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






def test_a_rejected_summary_leaves_its_turns_in_the_history(settings):
    """A summary that says nothing is rejected: nothing is recorded, the turns it should
    have covered stay in the history as far as the budget allows (never an overflow), and
    the summary is tried again a few turns later, not every turn."""
    wordy = ScriptedNarrator(replies=[" "])
    game = open_game(settings, "rejected", ScriptedNarrator(replies=[LONG_REPLY], n_ctx=700),
                     background=wordy)
    traces = []
    for i in range(30):
        traces.append(game.submit(f"walk to place number {i}").trace)
        game.settle()
    assert game.summarizer.summaries.current.through_turn == 0
    assert all(t.prompt_tokens + t.max_tokens <= t.n_ctx for t in traces)
    last = traces[-1]
    assert "walk to place number 29" in last.prompt and "walk to place number 26" in last.prompt
    sections = {s["name"]: s for s in last.sections}
    assert sections["history"]["tokens"] == max(s["tokens"] for s in last.sections)
    assert sections["history"]["dropped"] > 0  # the oldest went only for want of room
    assert 0 < wordy.calls < 30  # tried again now and then, not on every turn
    game.close()


def test_a_summary_waits_while_the_newest_one_has_not_reached_the_prompt(tmp_path, settings):
    """With the prefill, a newer summary before the last one is in use would make the
    reading of its layout start over (and none would ever be read in time)."""
    recorded = turns(10)
    in_use = [False]
    summarizer = Summarizer(ScriptedNarrator(replies=["They walked."]), settings.prompts_dir,
                            SummaryLog(tmp_path), turns=lambda: recorded,
                            caps=lambda: (200, 40), in_use=lambda: in_use[0])
    summarizer.record(recorded[-1])
    summarizer.settle()
    assert summarizer.summaries.current == Summary()
    in_use[0] = True
    summarizer.record(recorded[-1])
    summarizer.settle()
    assert summarizer.summaries.current.through_turn > 0


def test_a_summary_holds_its_next_token_while_a_turn_waits_for_its_first_word(settings):
    """Its own context would take half the cores the turn's prompt is read with."""
    from storyteller.narrator.scripted import ScriptedNarrator as Scripted

    seen = []

    class Watching(Scripted):
        def stream(self, *args, **kwargs):
            for number, chunk in enumerate(super().stream(*args, **kwargs)):
                seen.append((number, game.pipeline.no_turn_waiting.is_set()))
                yield chunk

    narrator = Watching(replies=["The door creaks open onto the square."])
    game = open_game(settings, "pause", narrator, background=Scripted())
    paused = []
    game.summarizer.pause = lambda: paused.append(game.pipeline.no_turn_waiting.is_set())
    game.submit("open the door")
    assert seen[0] == (0, False)  # the first word: a summary would wait
    assert all(free for number, free in seen[1:])  # after it, it goes on
    assert game.pipeline.no_turn_waiting.is_set()
    assert game.summarizer.summarize_text("The player: look\nThe narrator: " + "A door. " * 30,
                                          summary_cap=40) is not None
    assert paused  # between its tokens
    game.close()
