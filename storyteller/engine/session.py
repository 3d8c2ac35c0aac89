"""Opening a game: the campaign, its world, the system prompt and the narrator."""

from __future__ import annotations

from storyteller.campaign import CAMPAIGN_FILE, WORLD_FILE, Campaign, campaign_path
from storyteller.config import Settings
from storyteller.context.world import World, read_world_file, system_prompt
from storyteller.engine.game import Game
from storyteller.narrator.base import Narrator
from storyteller.narrator.registry import load_narrator


def open_campaign(settings: Settings, name: str) -> tuple[Campaign, World]:
    """Resume the campaign, or start it with settings.world. A campaign keeps a copy of
    the world file it began with, so editing prompts/worlds/ never changes old stories."""
    folder = campaign_path(settings.saves_dir, name)
    if (folder / CAMPAIGN_FILE).exists():
        campaign = Campaign.load(settings.saves_dir, name)
        world_text = (folder / WORLD_FILE).read_text(encoding="utf-8", errors="replace")
    else:
        world_text = read_world_file(settings.prompts_dir, settings.world)
        World.from_toml(settings.world, world_text, origin=settings.world)  # validate first
        campaign = Campaign.create(settings.saves_dir, name, settings.world, world_text,
                                   settings.model)
    world_name = campaign.meta.get("world", "")
    return campaign, World.from_toml(world_name, world_text, origin=str(folder / WORLD_FILE))


def open_game(settings: Settings, campaign_name: str, narrator: Narrator | None = None,
              background: Narrator | None = None) -> Game:
    """Open the campaign first (cheap, and its errors come before a slow model load).
    Without an injected narrator, the model is loaded twice: one context narrates, the
    other summarizes, so background work never evicts the story from the KV cache
    (the weights are memory-mapped once)."""
    campaign, world = open_campaign(settings, campaign_name)
    if narrator is None:
        narrator = _load(settings)
        background = background or _load(settings)
    return Game(campaign, narrator, settings, world, system_prompt(settings.prompts_dir, world),
                background=background)


def _load(settings: Settings) -> Narrator:
    return load_narrator(settings.model, settings.models_dir, n_ctx=settings.n_ctx,
                         n_ctx_cap=settings.n_ctx_cap, n_threads=settings.n_threads)
