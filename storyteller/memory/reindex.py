"""`storyteller reindex --campaign NAME`: rebuild a campaign's memory index from its
sources of truth (the world file, memories.jsonl and the transcript), with a progress
bar. No model is loaded: extracted facts come from memories.jsonl."""

from __future__ import annotations

import sys

from storyteller.config import Settings
from storyteller.storage.campaign import WORLD_FILE, Campaign
from storyteller.storage.lock import hold_campaign
from storyteller.storage.names import campaign_path
from storyteller.storage.worlds import World


def reindex_campaign(settings: Settings, name: str) -> int:
    with hold_campaign(campaign_path(settings.saves_dir, name)):
        campaign = Campaign.load(settings.saves_dir, name)
        world = World.from_toml(campaign.meta.get("world", ""), campaign.world_text,
                                origin=str(campaign.path / WORLD_FILE))
        count = build_index(campaign, world, settings.memory_url,
                            f"Reindexing {campaign.name}")
    where = settings.memory_url or campaign.path / "memory"
    print(f"Reindexed {count} memories of {campaign.name} into {where}.")
    return 0


def build_index(campaign: Campaign, world: World, memory_url: str | None, label: str) -> int:
    """Rebuild the campaign's memory index from its sources, with a progress bar on
    stderr: embedded in batches, at about the embedder's own speed. Returns the number
    of entries indexed."""
    from tqdm import tqdm

    from storyteller.memory.embedder import shared_embedder
    from storyteller.memory.index import MemoryIndex
    from storyteller.memory.story import StoryMemory

    index = MemoryIndex.open(campaign.path, memory_url, shared_embedder())
    memory = StoryMemory(campaign, world, index, extractor=None)
    try:
        with tqdm(desc=label, unit=" memories", file=sys.stderr) as bar:
            return memory.reindex(progress=bar.update, total=lambda n: setattr(bar, "total", n))
    finally:
        memory.close()
