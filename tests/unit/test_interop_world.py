"""The world format's import features: [[lore]] tables, openings, long texts, secondary
keys and their gating in the lorebook (SillyTavern's four selectiveLogic modes)."""

import json

import pytest

from storyteller.errors import WorldError
from storyteller.memory.entries import MemoryEntry, world_entries
from storyteller.memory.lorebook import Lorebook, secondary_keys_pass
from storyteller.storage.worlds import World

LORE_WORLD = '''title = "Tides"
setting = "A harbour town."
opening = "The bell rings."
openings = ["The fog lifts.", "  ", "A gull screams."]

[[lore]]
name = "the Drowned King"
aliases = ["king"]
secondary_keys = ["crown", "throne"]
selective = true
selective_logic = "AND ALL"
importance = 7
text = "The Drowned King rules below the harbour."
placement = { position = 4, depth = 2, probability = 80 }

[[characters]]
name = "Ada"
text = "Ada keeps the lighthouse."
'''


def world_of(*lore_tables: str) -> World:
    return World.from_toml("w", 'title = "T"\nsetting = "S"\n' + "".join(lore_tables),
                           "w.toml")


def lore(name: str, text: str, extra: str = "") -> str:
    return f'[[lore]]\nname = "{name}"\ntext = "{text}"\n{extra}\n'


def test_lore_tables_openings_and_secondary_keys_load_and_become_entries():
    world = World.from_toml("tides", LORE_WORLD, "tides.toml")
    assert world.openings == ("The fog lifts.", "A gull screams.")
    king = next(item for item in world.lore if item.kind == "lore")
    assert king.secondary_keys == ("crown", "throne") and king.selective
    assert king.selective_logic == "AND ALL" and king.placement["depth"] == 2
    entries = {entry.id: entry for entry in world_entries(world.lore)}
    assert set(entries) == {"lore-drowned-king", "character-ada"}
    assert entries["lore-drowned-king"].secondary_keys == ("crown", "throne")
    assert entries["lore-drowned-king"].selective_logic == "AND ALL"


def test_lore_text_may_be_long_but_not_endless():
    long_text = ("The tide remembers every name. " * 700)[:19_990]
    assert len(world_of(lore("tide", long_text)).lore[0].text) == 19_990
    with pytest.raises(WorldError, match="text"):
        world_of(lore("tide", "x" * 20_001))


@pytest.mark.parametrize(("extra", "problem"), [
    ('selective_logic = "SOMETIMES"', "selective_logic"),
    ('secondary_keys = "crown"', "secondary_keys"),
])
def test_bad_secondary_key_fields_are_one_clear_error(extra, problem):
    with pytest.raises(WorldError) as error:
        world_of(lore("x", "y", extra))
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_openings_must_be_texts():
    with pytest.raises(WorldError, match="openings"):
        World.from_toml("w", 'title = "T"\nsetting = "S"\nopenings = "one"\n', "w.toml")


def test_entries_with_secondary_keys_round_trip_through_json_and_chroma_metadata():
    entry = MemoryEntry(id="lore-king", kind="lore", name="the Drowned King",
                        aliases=("king",), text="The Drowned King rules.", source="world",
                        secondary_keys=("crown", "old throne"), selective=True,
                        selective_logic="NOT ANY")
    assert MemoryEntry.from_json(json.loads(json.dumps(entry.to_json()))) == entry
    metadata = entry.metadata()
    assert all(isinstance(value, str | int | float | bool) for value in metadata.values())
    assert MemoryEntry.from_metadata(entry.id, entry.text, metadata) == entry
    with pytest.raises(ValueError, match="selective logic"):
        MemoryEntry(id="x", kind="lore", text="t", selective_logic="MAYBE")


def test_entries_whose_names_make_the_same_id_get_ids_of_their_own():
    world = world_of(lore("Note", "First note."), lore("note", "Second note."),
                     lore("森", "The forest."), lore("川", "The river."))
    ids = [entry.id for entry in world_entries(world.lore)]
    assert ids == ["lore-note", "lore-note-2", "lore-entry", "lore-entry-2"]


# -- gating -------------------------------------------------------------------------

def gated(logic: str, selective: bool = True) -> Lorebook:
    return Lorebook([MemoryEntry(id="king", kind="lore", name="the Drowned King",
                                 aliases=("king",), text="The king.",
                                 secondary_keys=("crown", "throne"), selective=selective,
                                 selective_logic=logic)])


@pytest.mark.parametrize(("logic", "neither", "one", "both"), [
    ("AND ANY", False, True, True),   # at least one secondary key
    ("NOT ALL", True, True, False),   # not all of them
    ("NOT ANY", True, False, False),  # none of them
    ("AND ALL", False, False, True),  # all of them
])
def test_secondary_keys_gate_a_selective_entry_as_sillytavern_does(logic, neither, one, both):
    lorebook = gated(logic)
    assert bool(lorebook.mentioned("I bow to the king.")) is neither
    assert bool(lorebook.mentioned("I bow to the king and his Crown.")) is one
    assert bool(lorebook.mentioned("The king's crown lies by the throne.")) is both
    assert not lorebook.mentioned("A crown and a throne, but no ruler.")  # primary key first


def test_secondary_keys_do_nothing_unless_the_entry_is_selective():
    assert gated("AND ALL", selective=False).mentioned("I bow to the king.") == {"king"}
    no_keys = Lorebook([MemoryEntry(id="king", kind="lore", name="king", text="The king.",
                                    selective=True, selective_logic="AND ALL")])
    assert no_keys.mentioned("I bow to the king.") == {"king"}


def test_secondary_keys_match_whole_words_and_a_key_of_nothing_never_matches():
    assert not secondary_keys_pass("AND ANY", ("crown",), "the crowning of the king")
    assert secondary_keys_pass("AND ANY", ("old throne",), "the old throne room")
    assert not secondary_keys_pass("AND ANY", ("",), "anything")
    assert secondary_keys_pass("NOT ALL", ("", "crown"), "crown")
