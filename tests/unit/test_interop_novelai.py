"""Importing NovelAI lorebooks, as .lorebook JSON and as a PNG (naidata chunk)."""

import base64
import json

from interop_support import png, text_chunk, write_json

from storyteller.memory.entries import world_entries
from storyteller.memory.lorebook import Lorebook
from storyteller.storage.interop.importer import import_world
from storyteller.storage.worlds import World, read_world_text


def entry(display_name, keys, text, **fields):
    return {"displayName": display_name, "keys": keys, "text": text, "enabled": True,
            "forceActivation": False, "searchRange": 1000, "keyRelative": False,
            "contextConfig": {"prefix": "", "suffix": "\n", "tokenBudget": 2048,
                              "budgetPriority": 400, "insertionPosition": -1},
            "lastUpdatedAt": 1700000000000, "id": "a1b2", **fields}


LOREBOOK = {"lorebookVersion": 5, "settings": {"orderByKeyLocations": False},
            "categories": [], "entries": [
                entry("Aldera", ["Aldera", "the capital"], "Aldera is the river capital.",
                      forceActivation=True),
                entry("", ["Guild of Lamps", "lamplighters"], "The lamplighters know.",
                      contextConfig={"budgetPriority": 800}),
                entry("Old Road", ["/old (road|way)/i"], "The old road is haunted."),
                entry("Ferry", ["ferry"], "Retired.", enabled=False),
            ]}


def load(path) -> World:
    return World.from_toml(path.stem, read_world_text(path), str(path))


def test_a_novelai_lorebook_becomes_lore(tmp_path):
    written = import_world(write_json(tmp_path / "Aldera.lorebook", LOREBOOK),
                           tmp_path / "worlds")
    assert written.name == "aldera.toml"
    world = load(written)
    assert world.title == "Aldera" and world.setting
    lore = {item.name: item for item in world.lore}
    assert list(lore) == ["Aldera", "Guild of Lamps", "Old Road"]  # Ferry is disabled
    assert lore["Aldera"].pinned and lore["Aldera"].aliases == ("the capital",)
    assert lore["Guild of Lamps"].aliases == ("lamplighters",)  # named by its first key
    assert lore["Old Road"].aliases == ()
    assert lore["Old Road"].placement["regex_keys"] == ["/old (road|way)/i"]
    assert [lore[n].importance for n in lore] == [1, 10, 1]  # budgetPriority 400, 800, 400
    assert lore["Aldera"].placement["contextConfig"]["tokenBudget"] == 2048
    assert lore["Aldera"].placement["searchRange"] == 1000
    entries = world_entries(world.lore)
    assert Lorebook(entries).mentioned("I ask the lamplighters.") == {"lore-guild-of-lamps"}


def test_a_novelai_lorebook_in_a_png(tmp_path):
    path = tmp_path / "atlas.png"
    path.write_bytes(png(text_chunk("naidata", base64.b64encode(json.dumps(LOREBOOK)
                                                                .encode()))))
    world = load(import_world(path, tmp_path / "worlds"))
    assert world.title == "atlas" and len(world.lore) == 3
