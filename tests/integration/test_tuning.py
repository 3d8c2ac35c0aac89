"""Campaign settings: validated, saved in campaign.json, applied to the game."""

import pytest

from storyteller.engine.session import open_game
from storyteller.engine.tuning import (
    TuningError,
    current_settings,
    save_settings,
)
from storyteller.storage.campaign import Campaign


def test_saved_settings_apply_now_and_when_the_campaign_reopens(settings, scripted):
    game = open_game(settings, "quest", scripted)
    assert current_settings(game).temperature == settings.temperature
    save_settings(game, {"temperature": "0.4", "top_k": "10", "max_tokens": "50",
                         "content_log_level": 3})
    assert (game.settings.temperature, game.settings.top_k, game.settings.max_tokens) == (
        0.4, 10, 50)
    trace = game.submit("look").trace
    assert trace.max_tokens == 50 and trace.prompt_tokens + 50 <= trace.n_ctx
    assert game.content_log.level == 3
    game.close()
    again = open_game(settings, "quest", scripted)
    assert again.settings.temperature == 0.4  # not given as a flag: the campaign's applies
    assert again.settings.max_tokens == 40  # given (the fixture sets it): the flag wins
    assert current_settings(again).content_log_level == 3


@pytest.mark.parametrize(("values", "message"), [
    ({"repeat_penalty": "3"}, "repeat penalty: Input should be less than or equal to 2"),
    ({"content_log_level": 4}, "content log level: Input should be less than or equal to 3"),
    ({"max_tokens": 1500}, "max tokens: at most 1023 with a 2048-token context"),
    ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
])
def test_bad_values_are_refused_and_nothing_is_saved(settings, scripted, values, message):
    game = open_game(settings, "quest", scripted)
    before = Campaign.load(settings.saves_dir, "quest").meta["settings"]
    in_force = game.settings
    with pytest.raises(TuningError) as error:
        save_settings(game, values)
    assert str(error.value).startswith(message)
    assert Campaign.load(settings.saves_dir, "quest").meta["settings"] == before
    assert game.settings == in_force
