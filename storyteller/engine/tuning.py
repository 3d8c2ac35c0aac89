"""Per-campaign settings (config.Tuning: the sampling and the content-log level), changed
in the settings screen: validated, saved with the campaign (Campaign.update_settings;
open_game applies them next time), and applied to the game at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from storyteller.config import Tuning
from storyteller.errors import StorytellerError
from storyteller.generation import check_max_tokens

if TYPE_CHECKING:
    from storyteller.engine.game import Game

CONTENT_LOG_LEVELS = {
    0: "off",
    1: "one summary line per turn",
    2: "key stages",
    3: "full prompts and outputs",
}


class TuningError(StorytellerError):
    """A setting the player typed is out of range; the message says which and why."""


def current_settings(game: Game) -> Tuning:
    """The values in force."""
    return Tuning(**game.settings.model_dump(include=set(Tuning.model_fields)))


def validate_settings(values: dict, n_ctx: int) -> Tuning:
    try:
        tuned = Tuning(**values)
        check_max_tokens(tuned.max_tokens, n_ctx)
    except ValidationError as error:
        problem = error.errors()[0]
        field = problem["loc"][0] if problem["loc"] else "settings"
        raise TuningError(f"{str(field).replace('_', ' ')}: {problem['msg']}.") from None
    except StorytellerError as error:
        raise TuningError(str(error)) from None
    return tuned


def save_settings(game: Game, values: dict) -> Tuning:
    """Validate, keep with the campaign and apply; raises TuningError, changing nothing."""
    tuned = validate_settings(values, game.narrator.n_ctx)
    game.campaign.update_settings(tuned.model_dump())
    game.settings = game.settings.model_copy(update=tuned.model_dump())
    return tuned
