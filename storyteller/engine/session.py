"""Opening a game: the campaign, its world, the system prompt and the narrator."""

from __future__ import annotations

import os

from pydantic import ValidationError

from storyteller.campaign import (
    CAMPAIGN_FILE,
    CAMPAIGN_SETTINGS,
    WORLD_FILE,
    Campaign,
    CampaignError,
    campaign_path,
)
from storyteller.config import Settings
from storyteller.context.world import World, read_world_file, read_world_text, system_prompt
from storyteller.engine.game import Game
from storyteller.memory.story import StoryMemory
from storyteller.narrator.base import Narrator
from storyteller.narrator.registry import (
    EXTRACTION_OFF,
    load_extractor,
    load_narrator,
    with_preset_sampling,
)

# Test-only: the crash tests (tests/test_crash.py) kill many headless runs and set this
# to a per-word delay in seconds to play them with the ScriptedNarrator. Not for players.
TEST_NARRATOR_ENV = "STORYTELLER_TEST_SCRIPTED_NARRATOR"


def open_campaign(settings: Settings, name: str) -> tuple[Campaign, World]:
    """Resume the campaign, or start it with settings.world. A campaign keeps a copy of
    the world file it began with, so editing prompts/worlds/ never changes old stories."""
    if (campaign_path(settings.saves_dir, name) / CAMPAIGN_FILE).exists():
        return load_campaign(settings, name)
    world_text = read_world_file(settings.prompts_dir, settings.world)
    World.from_toml(settings.world, world_text, origin=settings.world)  # validate first
    campaign = Campaign.create(settings.saves_dir, name, settings.world, world_text,
                               settings.model)
    return campaign, World.from_toml(settings.world, world_text,
                                     origin=str(campaign.path / WORLD_FILE))


def load_campaign(settings: Settings, name: str) -> tuple[Campaign, World]:
    """An existing campaign and its world; never creates one."""
    campaign = Campaign.load(settings.saves_dir, name)
    world_path = campaign.path / WORLD_FILE
    world_text = read_world_text(world_path)
    return campaign, World.from_toml(campaign.meta.get("world", ""), world_text,
                                     origin=str(world_path))


def campaign_settings(settings: Settings, campaign: Campaign) -> Settings:
    """The campaign keeps its own sampling and content-log settings: they apply unless a
    flag or environment variable sets them now, and what applies is saved back."""
    stored = {key: value for key, value in campaign.settings.items()
              if key in CAMPAIGN_SETTINGS and key not in settings.model_fields_set}
    try:
        effective = settings.model_copy(update=stored)
        Settings.model_validate(effective.model_dump())
    except ValidationError as error:
        raise CampaignError(f"{campaign.path / CAMPAIGN_FILE} holds an invalid setting "
                            f"({error.errors()[0]['loc'][0]}); fix or remove it.") from None
    campaign.update_settings({key: getattr(effective, key) for key in CAMPAIGN_SETTINGS})
    return effective


def open_game(settings: Settings, campaign_name: str, narrator: Narrator | None = None,
              extractor: Narrator | None = None, background: Narrator | None = None) -> Game:
    """Open the campaign first (cheap, and its errors come before a slow model load).

    Without an injected narrator, the model is loaded twice: one context narrates, the
    other (`background`) writes summaries and extracts facts after each turn, so that
    work never evicts the story from the narrator's KV cache (the weights are
    memory-mapped once; see registry.load_extractor). --extractor-model puts another
    model in that role; 'off' stops extraction. Tests and benchmarks may inject the
    models (an injected narrator does its own background work unless one is given)."""
    campaign, world = open_campaign(settings, campaign_name)
    settings = campaign_settings(with_preset_sampling(settings), campaign)
    if narrator is None and os.environ.get(TEST_NARRATOR_ENV):
        from storyteller.narrator.scripted import ScriptedNarrator

        narrator = ScriptedNarrator(delay=float(os.environ[TEST_NARRATOR_ENV]))
    loaded = narrator is None
    if loaded:
        narrator = load_narrator(settings)
        background = load_extractor(settings, narrator)
    background = background or narrator
    if extractor is None and settings.extractor_model != EXTRACTION_OFF:
        extractor = background
    memory = open_memory(settings, campaign, world, narrator, extractor)
    return Game(campaign, narrator, settings, world, system_prompt(settings.prompts_dir, world),
                memory, background=background, owns_models=loaded)


def open_memory(settings: Settings, campaign: Campaign, world: World, narrator: Narrator,
                extractor: Narrator | None) -> StoryMemory:
    """The Game owns the extractor's model (it is the background context)."""
    from storyteller.memory.extract import Extractor

    facts = Extractor(extractor, settings.prompts_dir, settings.seed, False) if extractor else None
    return StoryMemory.open(campaign, world, settings.memory_url, facts, narrator.count_tokens,
                            narrator.n_ctx)
