"""Per-campaign sampling settings, changed in the settings screen: validated, saved with
the campaign (Campaign.update_settings; open_game applies them next time), and applied
to the Game's Settings at once."""

from __future__ import annotations

from pydantic import Field, ValidationError

from storyteller.engine.game import Game
from storyteller.narrator.base import SamplingOptions

CONTENT_LOG_LEVELS = {
    0: "off",
    1: "one summary line per turn",
    2: "key stages",
    3: "full prompts and outputs",
}


class TuningError(ValueError):
    """A setting the player typed is out of range; the message says which and why."""


class TunedSettings(SamplingOptions):
    """The sampling options a player tunes (the seed stays the game's), plus the
    content-log level."""

    content_log_level: int = Field(0, ge=0, le=3,
                                   description="0 off … 3 full prompts and outputs")

    def tuned(self) -> dict:
        return self.model_dump(exclude={"seed"})


def current_settings(game: Game) -> TunedSettings:
    """The values in force."""
    fields = set(TunedSettings.model_fields) - {"seed"}
    return TunedSettings(**{name: getattr(game.settings, name) for name in fields})


def validate_settings(values: dict, n_ctx: int) -> TunedSettings:
    try:
        tuned = TunedSettings(**values)
    except ValidationError as error:
        problem = error.errors()[0]
        field = problem["loc"][0] if problem["loc"] else "settings"
        raise TuningError(f"{str(field).replace('_', ' ')}: {problem['msg']}.") from None
    if tuned.max_tokens >= n_ctx // 2:
        raise TuningError(f"max tokens: at most {n_ctx // 2 - 1} with a {n_ctx}-token context.")
    return tuned


def apply_settings(game: Game, tuned: TunedSettings) -> None:
    game.settings = game.settings.model_copy(update=tuned.tuned())
    game.content_log.level = tuned.content_log_level


def save_settings(game: Game, values: dict) -> TunedSettings:
    """Validate, keep with the campaign and apply; raises TuningError, changing nothing."""
    tuned = validate_settings(values, game.narrator.n_ctx)
    game.campaign.update_settings(tuned.tuned())
    apply_settings(game, tuned)
    return tuned
