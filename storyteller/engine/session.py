"""Opening a game: the campaign, its world, the system prompt and the narrator."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from storyteller.config import Settings
from storyteller.context.prompt import system_prompt
from storyteller.engine.game import Game
from storyteller.errors import SaveError
from storyteller.generation import Narrator
from storyteller.memory.story import StoryMemory
from storyteller.narrator.registry import (
    EXTRACTION_OFF,
    NOTES_OFF_NOTICE,
    load_extractor,
    load_narrator,
    takes_notes,
    with_preset_sampling,
)
from storyteller.storage.campaign import WORLD_FILE, Campaign
from storyteller.storage.lock import CampaignLock, hold_campaign
from storyteller.storage.names import campaign_path
from storyteller.storage.schema import CAMPAIGN_FILE, CAMPAIGN_SETTINGS
from storyteller.storage.worlds import World, read_world_file, read_world_text


def open_campaign(settings: Settings, name: str) -> tuple[Campaign, World, CampaignLock]:
    """Resume the campaign, or start it with settings.world (shipped or imported), holding
    its lock (the one writer). A campaign keeps a copy of the world file it began with, so
    editing a world never changes old stories. A new campaign's world is checked before
    anything is written."""
    path = campaign_path(settings.saves_dir, name)
    world_text = None
    if not (path / CAMPAIGN_FILE).exists():
        world_text = read_world_file(settings, settings.world)
        World.from_toml(settings.world, world_text, origin=settings.world)  # validate first
    lock = hold_campaign(path, create=world_text is not None)
    try:
        if (path / CAMPAIGN_FILE).exists():  # under the lock: maybe just made by another
            campaign, world = load_campaign(settings, name)
            return campaign, world, lock
        world_text = world_text or read_world_file(settings, settings.world)
        campaign = Campaign.create(settings.saves_dir, name, settings.world, world_text,
                                   settings.model)
        return campaign, World.from_toml(settings.world, world_text,
                                         origin=str(campaign.path / WORLD_FILE)), lock
    except BaseException:
        lock.release()
        raise


def load_campaign(settings: Settings, name: str,
                  read_only: bool = False) -> tuple[Campaign, World]:
    """An existing campaign and its world; never creates one."""
    campaign = Campaign.load(settings.saves_dir, name, read_only)
    world_path = campaign.path / WORLD_FILE
    world_text = read_world_text(world_path)
    return campaign, World.from_toml(campaign.meta.get("world", ""), world_text,
                                     origin=str(world_path))


def campaign_settings(settings: Settings, campaign: Campaign) -> Settings:
    """The campaign keeps its own sampling and content-log settings: they apply unless a
    flag or environment variable sets them now, and what applies is saved back."""
    effective = settings_in_force(settings, campaign)
    campaign.update_settings({key: getattr(effective, key) for key in CAMPAIGN_SETTINGS})
    return effective


def settings_in_force(settings: Settings, campaign: Campaign) -> Settings:
    """The settings with the campaign's own where no flag or variable sets them now;
    nothing is written."""
    stored = {key: value for key, value in campaign.settings.items()
              if key in CAMPAIGN_SETTINGS and key not in settings.model_fields_set}
    try:
        effective = settings.model_copy(update=stored)
        Settings.model_validate(effective.model_dump())
    except ValidationError as error:
        raise SaveError(f"{campaign.path / CAMPAIGN_FILE} holds an invalid setting "
                            f"({error.errors()[0]['loc'][0]}); fix or remove it.") from None
    return effective


def open_game(settings: Settings, campaign_name: str, narrator: Narrator | None = None,
              extractor: Narrator | None = None, background: Narrator | None = None) -> Game:
    """Open the campaign first (cheap, and its errors come before a slow model load),
    then load the models and the memory (start_game)."""
    campaign, world, lock = open_campaign(settings, campaign_name)
    return start_game(settings, campaign, world, lock, narrator, extractor, background)


def start_game(settings: Settings, campaign: Campaign, world: World, lock: CampaignLock,
               narrator: Narrator | None = None, extractor: Narrator | None = None,
               background: Narrator | None = None,
               on_stage: Callable[[str], None] | None = None) -> Game:
    """The slow part of opening a game: the models and the story memory of an opened
    campaign (the terminal app shows the story meanwhile). on_stage hears each part
    before it loads: "narrator", "embedder", then "memory" (the embedder loads beside the
    narrator; its stage waits for what is left of it).

    Without an injected narrator, the model is loaded twice: one context narrates, the
    other (`background`) writes summaries and extracts facts after each turn, so that
    work never evicts the story from the narrator's KV cache (the weights are
    memory-mapped once; see registry.load_extractor). --extractor-model puts another
    model in that role; 'off' stops extraction; 'auto' (the default) takes notes only with
    a narrator of 1B parameters or more, and says so once (Game.opening_notices). Tests
    and benchmarks may inject the models (an injected narrator does its own background
    work unless one is given). The lock is released if the game cannot start."""
    from storyteller.memory.embedder import shared_embedder  # chromadb: not at import

    stage = on_stage or (lambda name: None)
    embedder = shared_embedder()
    embedder.warm_up()
    try:
        kept = campaign.keep_branches()  # a transcript forked before the lock existed
        settings = campaign_settings(with_preset_sampling(settings), campaign)
        loaded = narrator is None
        stage("narrator")
        if loaded:
            narrator = load_narrator(settings)
            background = load_extractor(settings, narrator)
        background = background or narrator
        notices = []
        if extractor is None and takes_notes(settings, narrator.parameters):
            extractor = background
        elif extractor is None and settings.extractor_model != EXTRACTION_OFF:
            notices.append(NOTES_OFF_NOTICE)
        stage("embedder")
        embedder.load()
        stage("memory")
        memory = open_memory(settings, campaign, world, narrator, extractor, embedder)
        game = Game(campaign, narrator, settings, world,
                    system_prompt(settings.prompts_dir, world), memory, background=background,
                    owns_models=loaded, lock=lock)
        game.opening_notices = notices
        if kept:  # what summaries and memory made of the other branch no longer holds
            game.timeline.rejoin(min(branch.forked_at for branch in kept))
        return game
    except BaseException:
        lock.release()
        raise


def open_memory(settings: Settings, campaign: Campaign, world: World, narrator: Narrator,
                extractor: Narrator | None, embedder=None) -> StoryMemory:
    """The Game owns the extractor's model (it is the background context)."""
    from storyteller.memory.extract import Extractor

    facts = Extractor(extractor, settings.prompts_dir, settings.seed) if extractor else None
    return StoryMemory.open(campaign, world, settings.memory_url, facts, embedder)
