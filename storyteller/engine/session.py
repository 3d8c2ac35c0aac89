"""Opening a game: the campaign, its world, the system prompt and the narrator."""

from __future__ import annotations

from storyteller.campaign import CAMPAIGN_FILE, WORLD_FILE, Campaign, campaign_path
from storyteller.config import Settings
from storyteller.context.world import World, read_world_file, system_prompt
from storyteller.engine.game import Game
from storyteller.memory.story import StoryMemory
from storyteller.narrator.base import Narrator
from storyteller.narrator.registry import load_narrator

EXTRACTION_OFF = "off"
EXTRACTOR_N_CTX = 2048  # an extraction prompt is one turn and the instructions


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
              extractor: Narrator | None = None) -> Game:
    """Open the campaign first (cheap, and its errors come before a slow model load).
    `extractor` is the model that notes facts after each turn (see open_memory)."""
    campaign, world = open_campaign(settings, campaign_name)
    loaded = narrator is None
    if loaded:
        narrator = _load(settings, settings.model)
    if extractor is None and settings.extractor_model != EXTRACTION_OFF:
        # Its own context even for the narrator's model: extraction prompts would evict
        # the narrator's cached prompt prefix. The weights are mmapped, so shared.
        model = settings.extractor_model or (settings.model if loaded else None)
        extractor = _load(settings, model, n_ctx_cap=EXTRACTOR_N_CTX) if model else narrator
        owned = model is not None
    else:
        owned = False
    memory = open_memory(settings, campaign, world, narrator, extractor, owned)
    return Game(campaign, narrator, settings, world, system_prompt(settings.prompts_dir, world),
                memory)


def open_memory(settings: Settings, campaign: Campaign, world: World, narrator: Narrator,
                extractor: Narrator | None, owns_extractor: bool = False) -> StoryMemory:
    from storyteller.memory.extract import Extractor

    facts = (Extractor(extractor, settings.prompts_dir, settings.seed, owns_extractor)
             if extractor else None)
    return StoryMemory.open(campaign, world, settings.memory_url, facts, narrator.count_tokens,
                            narrator.n_ctx)


def _load(settings: Settings, model: str, n_ctx_cap: int | None = None) -> Narrator:
    """With n_ctx_cap, the model's own context size up to that cap (not --n-ctx)."""
    return load_narrator(model, settings.models_dir,
                         n_ctx=None if n_ctx_cap else settings.n_ctx,
                         n_ctx_cap=n_ctx_cap or settings.n_ctx_cap, n_threads=settings.n_threads)
