"""Per-campaign sampling settings, changed in the settings screen: validated, saved in
campaign.json under "settings", and applied to the Game's Settings."""

from __future__ import annotations

from pydantic import Field, ValidationError

from storyteller.engine.game import Game
from storyteller.narrator.base import SamplingOptions

META_KEY = "settings"
CONTENT_LOG_LEVELS = {
    0: "off",
    1: "one summary line per turn",
    2: "key stages",
    3: "full prompts and outputs",
}


class TuningError(ValueError):
    """A setting the player typed is out of range; the message says which and why."""


class CampaignSettings(SamplingOptions):
    """The sampling options a player tunes (the seed stays the game's), plus the
    content-log level."""

    content_log: int = Field(0, ge=0, le=3, description="0 off … 3 full prompts and outputs")

    def tuned(self) -> dict:
        return self.model_dump(exclude={"seed"})


def current_settings(game: Game) -> CampaignSettings:
    """The values in force: the Game's Settings, plus the content-log level from the
    campaign (Settings may not know that field)."""
    fields = set(CampaignSettings.model_fields) - {"seed"}
    values = {name: getattr(game.settings, name) for name in fields
              if hasattr(game.settings, name)}
    saved = game.campaign.meta.get(META_KEY)
    if "content_log" not in values and isinstance(saved, dict):
        values["content_log"] = saved.get("content_log", 0)
    return CampaignSettings(**values)


def validate_settings(values: dict, n_ctx: int) -> CampaignSettings:
    try:
        tuned = CampaignSettings(**values)
    except ValidationError as error:
        problem = error.errors()[0]
        field = problem["loc"][0] if problem["loc"] else "settings"
        raise TuningError(f"{str(field).replace('_', ' ')}: {problem['msg']}.") from None
    if tuned.max_tokens >= n_ctx // 2:
        raise TuningError(f"max tokens: at most {n_ctx // 2 - 1} with a {n_ctx}-token context.")
    return tuned


def apply_settings(game: Game, tuned: CampaignSettings) -> None:
    known = type(game.settings).model_fields
    update = {name: value for name, value in tuned.tuned().items() if name in known}
    game.settings = game.settings.model_copy(update=update)


def save_settings(game: Game, values: dict) -> CampaignSettings:
    """Validate, write to campaign.json and apply; raises TuningError, changing nothing."""
    tuned = validate_settings(values, game.narrator.n_ctx)
    game.campaign.set_meta(META_KEY, tuned.tuned())
    apply_settings(game, tuned)
    return tuned


def apply_saved_settings(game: Game) -> str | None:
    """Apply the campaign's saved settings; returns a notice if they were unusable."""
    saved = game.campaign.meta.get(META_KEY)
    if saved is None:
        return None
    try:
        apply_settings(game, validate_settings(saved if isinstance(saved, dict) else {},
                                               game.narrator.n_ctx))
    except TuningError as error:
        return f"Saved settings ignored ({error}); fix them with /settings."
    return None
