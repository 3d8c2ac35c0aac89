"""Campaign settings: validated, saved in campaign.json, applied to the game."""

import json

import pytest

from storyteller.campaign import Campaign
from storyteller.engine.session import open_game
from storyteller.engine.tuning import (
    TuningError,
    apply_saved_settings,
    current_settings,
    save_settings,
)


def test_saved_settings_apply_now_and_when_the_campaign_reopens(settings, scripted):
    game = open_game(settings, "quest", scripted)
    assert current_settings(game).temperature == settings.temperature
    save_settings(game, {"temperature": "0.4", "top_k": "10", "max_tokens": "50",
                         "content_log": 3})
    assert (game.settings.temperature, game.settings.top_k, game.settings.max_tokens) == (
        0.4, 10, 50)
    assert game.submit("look").trace.max_tokens == 50
    again = open_game(settings, "quest", scripted)
    assert apply_saved_settings(again) is None
    assert again.settings.temperature == 0.4
    assert current_settings(again).content_log == 3


@pytest.mark.parametrize(("values", "message"), [
    ({"repeat_penalty": "3"}, "repeat penalty: Input should be less than or equal to 2"),
    ({"content_log": 4}, "content log: Input should be less than or equal to 3"),
    ({"max_tokens": 1500}, "max tokens: at most 1023 with a 2048-token context."),
    ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
])
def test_bad_values_are_refused_and_nothing_is_saved(settings, scripted, values, message):
    game = open_game(settings, "quest", scripted)
    with pytest.raises(TuningError) as error:
        save_settings(game, values)
    assert str(error.value).startswith(message)
    assert "settings" not in Campaign.load(settings.saves_dir, "quest").meta
    assert game.settings == settings


def test_unusable_saved_settings_are_ignored_with_a_notice(settings, scripted):
    game = open_game(settings, "quest", scripted)
    game.campaign.set_meta("settings", {"temperature": 9})
    meta = json.loads((game.campaign.path / "campaign.json").read_text())
    assert meta["settings"] == {"temperature": 9}
    notice = apply_saved_settings(open_game(settings, "quest", scripted))
    assert notice.startswith("Saved settings ignored (temperature:")
