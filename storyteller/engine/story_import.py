"""`storyteller import`: a new campaign from a story told elsewhere (a JSONL of turns, a
SillyTavern chat or a storyteller export; storage.story_file reads them). Everything is
checked before the campaign folder is made, and a campaign whose index could not be
built is removed again: an import lands whole or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

from storyteller.config import Settings
from storyteller.errors import SaveError
from storyteller.memory.reindex import build_index
from storyteller.storage.campaign import WORLD_FILE, Campaign
from storyteller.storage.lock import hold_campaign
from storyteller.storage.names import campaign_path
from storyteller.storage.story_file import read_story
from storyteller.storage.worlds import World, read_world_file, with_opening


def import_story(settings: Settings, name: str, path: Path) -> str:
    """Make campaign `name` (in settings.world) from the story file; returns what was
    done, in one line."""
    story = read_story(path)
    target = campaign_path(settings.saves_dir, name)
    if target.exists():
        raise SaveError(f"A campaign named {target.name!r} exists already in "
                        f"{settings.saves_dir}; import under another --campaign name.")
    world_text = read_world_file(settings, settings.world)
    if story.opening is not None:
        world_text = with_opening(world_text, story.opening, settings.world)
    World.from_toml(settings.world, world_text, origin=settings.world)  # it loads
    lock = hold_campaign(target, create=True)  # nobody opens it before it is whole
    try:
        campaign = Campaign.create(settings.saves_dir, name, settings.world, world_text,
                                   settings.model, story.turns,
                                   imported={"file": Path(path).name, "format": story.kind})
        world = World.from_toml(settings.world, world_text,
                                origin=str(campaign.path / WORLD_FILE))
        count = build_index(campaign, world, settings.memory_url,
                            f"Indexing {campaign.name}")
        lock.release()
    except BaseException:  # an error or Ctrl-C: no half-made campaign stays behind
        shutil.rmtree(target, ignore_errors=True)
        lock.release()
        raise
    return (f"Imported {len(story.turns)} turns ({story.kind}) from {path} as campaign "
            f"{campaign.name!r} in world {settings.world!r}; {count} memories indexed. "
            f"Play on with `storyteller --campaign {campaign.name}`.")
