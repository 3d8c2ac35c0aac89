"""The headless game loop, with a scripted narrator (the model is beside the point here)
and, where it matters, the real embedded model."""

import threading

import pytest

from storyteller.engine.reply import TurnCancelled
from storyteller.engine.session import open_game
from storyteller.engine.trace import TIMING_STAGES
from storyteller.errors import ModelError
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign


def test_a_turn_is_narrated_recorded_and_traced(settings, scripted):
    game = open_game(settings, "quest", scripted)
    chunks = []
    reply = game.submit("look around", on_chunk=chunks.append)
    assert reply.turn.number == 1 and reply.turn.output == "".join(chunks).strip()
    trace = reply.trace
    assert trace.prompt_tokens == len(scripted.prompts[-1].tokens) > 0
    assert trace.n_ctx == scripted.n_ctx and trace.max_tokens == settings.max_tokens
    assert set(trace.timings_ms) == set(TIMING_STAGES) and trace.attempts == 1
    timings = trace.timings_ms
    # the first token's wait starts at Enter: recall and budgeting are in it
    assert timings["ttft"] >= timings["retrieve"] + timings["budget"]
    assert timings["generate"] >= timings["decode"] >= 0
    assert trace.evaluated_tokens == trace.prompt_tokens  # no prompt cache: all evaluated
    assert Campaign.load(settings.saves_dir, "quest").turns[0].input == "look around"


def test_history_is_in_the_next_prompt(settings, scripted):
    game = open_game(settings, "quest", scripted)
    first = game.submit("light the lantern").turn
    game.submit("go north")
    assert first.output in scripted.prompts[-1].text
    assert "light the lantern" in scripted.prompts[-1].text


def test_resuming_a_campaign_continues_the_turn_numbers(settings):
    first = open_game(settings, "quest", ScriptedNarrator())
    first.submit("look")
    first.close()
    game = open_game(settings, "quest", ScriptedNarrator())
    assert game.submit("wait").turn.number == 2
    assert game.world.title == "The Embers of Emberfall"


def test_commands(settings, scripted):
    game = open_game(settings, "quest", scripted)
    assert "/undo" in game.submit("/help").message
    assert game.submit("/undo").message == "Nothing to undo yet."
    assert "Nothing to retry" in game.submit("/retry").message
    assert "Unknown command /dance" in game.submit("/dance").message
    assert "takes no arguments" in game.submit("/undo 3").message
    assert game.submit("/quit").quit
    assert "Type an action" in game.submit("  \x00 ").message
    assert game.campaign.turns == []


def test_undo_and_retry(settings, scripted):
    game = open_game(settings, "quest", scripted)
    game.submit("look")
    second = game.submit("open the door").turn
    retried = game.submit("/retry")
    assert retried.undone == second
    assert retried.turn.number == 2 and retried.turn.input == "open the door"
    assert retried.turn.output != second.output
    assert game.submit("/undo").undone.number == 2
    assert [t.input for t in Campaign.load(settings.saves_dir, "quest").turns] == ["look"]


def test_cancel_records_nothing(settings):
    narrator = ScriptedNarrator(delay=0.01)
    game = open_game(settings, "quest", narrator)
    cancel = threading.Event()
    with pytest.raises(TurnCancelled):
        game.submit("look", on_chunk=lambda chunk: cancel.set(), cancel=cancel)
    assert game.campaign.turns == []
    assert Campaign.load(settings.saves_dir, "quest").turns == []


def test_a_model_that_returns_nothing_is_retried_then_reported(settings):
    game = open_game(settings, "quest", ScriptedNarrator(replies=["", "", "At last, words."]))
    assert game.submit("look").turn.output == "At last, words."
    silent = ScriptedNarrator(replies=[" "])
    game = open_game(settings, "other", silent)
    with pytest.raises(ModelError, match="returned nothing"):
        game.submit("look")
    assert silent.calls == 3 and game.campaign.turns == []


def test_a_failed_retry_keeps_the_old_turn(settings):
    narrator = ScriptedNarrator(replies=["The first telling.", "", "", ""])
    game = open_game(settings, "quest", narrator)
    game.submit("look")
    with pytest.raises(ModelError):
        game.submit("/retry")
    assert [t.output for t in game.campaign.turns] == ["The first telling."]


def test_a_huge_action_is_cut_with_a_notice_and_played(settings, scripted):
    game = open_game(settings, "quest", scripted)
    reply = game.submit("run " * 25_000)
    assert reply.turn is not None and len(reply.turn.input) <= settings.max_input_chars
    assert "only the first" in reply.notices[0]


def test_max_tokens_too_large_for_the_context_is_refused(settings):
    settings.max_tokens = 1500
    with pytest.raises(ModelError, match="at most 1023"):
        open_game(settings, "quest", ScriptedNarrator(n_ctx=2048))




def test_edit_replaces_the_last_action_and_keeps_the_old_turn_on_cancel(settings):
    narrator = ScriptedNarrator(replies=["You knock.", "The door splinters.", "Never told."])
    game = open_game(settings, "quest", narrator)
    first = game.submit("knock").turn
    edited = game.submit("/edit kick the door")
    assert edited.undone == first
    assert (edited.turn.number, edited.turn.input) == (1, "kick the door")
    assert edited.turn.output == "The door splinters."
    assert "kick the door" in narrator.prompts[-1].text and "knock" not in narrator.prompts[-1].text
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TurnCancelled):
        game.edit("sneak away", cancel=cancel)
    turns = Campaign.load(settings.saves_dir, "quest").turns
    assert [(t.number, t.input) for t in turns] == [(1, "kick the door")]


def test_a_reply_carries_the_prompt_plan_section_by_section(settings, scripted):
    reply = open_game(settings, "quest", scripted).submit("look around")
    sections = {part.section for message in reply.plan.rendered.messages
                for part in message.parts}
    assert {"system", "input"} <= sections
    assert [s.name for s in reply.plan.sections] == [s["name"] for s in reply.trace.sections]
