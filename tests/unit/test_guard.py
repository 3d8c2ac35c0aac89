"""The loop guard: empty, repeated and looping answers are told again (a scripted
narrator stands in for the model: what matters is what the game does with its answers)."""

import pytest

from storyteller.engine.guard import EMPTY, REPEAT, judge, loops_inside, repeats_previous
from storyteller.engine.session import open_game
from storyteller.errors import ModelError
from storyteller.narrator.nocopy import NoCopy
from storyteller.narrator.scripted import ScriptedNarrator

FIRST = "The innkeeper wipes a mug and nods toward the stairs, where a lantern gutters."
SECOND = "Rain hammers the shutters as a stranger in a grey cloak steps inside."
LOOP = ("You walk down the road and see a tree. " * 4).strip()


def test_judge():
    assert judge("", "") == EMPTY and judge("  Yes.  ", "") == EMPTY
    assert judge(FIRST, "") is None and judge(SECOND, FIRST) is None
    assert judge(FIRST.replace("mug", "cup"), FIRST) == REPEAT
    assert judge(LOOP, "") == REPEAT
    assert repeats_previous(FIRST.upper(), FIRST) and not repeats_previous(FIRST, "")
    assert loops_inside(LOOP) and not loops_inside(FIRST + " " + SECOND)


def test_an_empty_or_tiny_answer_is_retried_with_a_new_seed(settings):
    narrator = ScriptedNarrator(replies=["", "Ok.", FIRST])
    game = open_game(settings, "quest", narrator)
    reply = game.submit("look")
    assert reply.turn.output == FIRST and narrator.calls == 3
    seeds = [options.seed for options in narrator.options]
    assert len(set(seeds)) == 3 and reply.trace.seed == seeds[-1]
    timings = reply.trace.timings_ms  # three answers generated, the last one kept
    assert reply.trace.attempts == 3 and timings["generate"] >= timings["decode"] >= 0
    assert {options.repeat_penalty for options in narrator.options} == {1.1}


def test_a_tiny_answer_is_kept_when_the_retries_run_out(settings):
    narrator = ScriptedNarrator(replies=["Ok."])
    game = open_game(settings, "quest", narrator)
    assert game.submit("look").turn.output == "Ok." and narrator.calls == 3


def test_nothing_at_all_three_times_is_an_error_that_records_nothing(settings):
    narrator = ScriptedNarrator(replies=[" "])
    game = open_game(settings, "quest", narrator)
    with pytest.raises(ModelError, match="returned nothing, 3 times"):
        game.submit("look")
    assert game.campaign.turns == []


def test_repeating_the_last_turn_is_retried_with_a_higher_repeat_penalty(settings):
    narrator = ScriptedNarrator(replies=[FIRST, FIRST, SECOND])
    game = open_game(settings, "quest", narrator)
    game.submit("look")
    reply = game.submit("look again")
    assert reply.turn.output == SECOND and narrator.calls == 3
    penalties = [options.repeat_penalty for options in narrator.options]
    assert penalties == pytest.approx([1.1, 1.1, 1.25])


def test_a_looping_answer_is_retried_and_the_last_kept_when_retries_run_out(settings):
    narrator = ScriptedNarrator(replies=[LOOP])
    game = open_game(settings, "quest", narrator)
    assert game.submit("walk").turn.output == LOOP
    penalties = [options.repeat_penalty for options in narrator.options]
    assert penalties == pytest.approx([1.1, 1.25, 1.4])


def test_the_repeat_penalty_never_passes_its_bound(settings):
    settings.repeat_penalty = 1.9
    narrator = ScriptedNarrator(replies=[LOOP])
    open_game(settings, "quest", narrator).submit("walk")
    assert [o.repeat_penalty for o in narrator.options] == pytest.approx([1.9, 2.0, 2.0])


def test_no_copy_bans_only_the_token_that_would_complete_a_copied_run():
    source = [1, 2, 3, 4, 5, 6, 2, 3, 4, 9]
    blocker = NoCopy(source, run=4)
    assert blocker.banned([7, 2, 3, 4]) == {5, 9}  # both runs "2 3 4 ..." in the source
    assert blocker.banned([7, 3, 4, 5]) == {6}
    assert blocker.banned([2, 3, 7]) == set() and blocker.banned([4]) == set()
    import numpy as np

    scores = np.zeros(10, dtype=np.single)
    blocker(np.array([8, 1, 2, 3], dtype=np.intc), scores)
    assert np.isneginf(scores[4]) and np.isfinite(np.delete(scores, 4)).all()


def test_each_answer_is_told_not_to_copy_the_previous_one(settings):
    narrator = ScriptedNarrator(replies=[FIRST, SECOND])
    game = open_game(settings, "quest", narrator)
    game.submit("look")
    game.submit("wait")
    assert [options.avoid_copying for options in narrator.options] == ["", FIRST]
