"""The read/edit protocol the UI uses for story memory, on its in-memory implementation."""

import pytest

from storyteller.engine.memory_view import (
    InMemoryMemoryView,
    MemoryEntryNotFound,
    MemoryView,
    memory_of,
)


def make_memory() -> InMemoryMemoryView:
    memory = InMemoryMemoryView()
    memory.add("character", "Maren Holt", "The blacksmith.", turn=1)
    memory.add("item", "Ember Stone", "Stolen from the forge.", pinned=True)
    memory.add("character", "Aldo", "A miller who owes Maren money.")
    return memory


def test_entries_by_kind_pinned_first_then_by_name():
    memory = make_memory()
    assert [e.name for e in memory.entries()] == ["Ember Stone", "Aldo", "Maren Holt"]
    assert [e.name for e in memory.entries("character")] == ["Aldo", "Maren Holt"]
    assert memory.entries("location") == []


def test_search_ranks_by_matching_words():
    memory = make_memory()
    assert [e.name for e in memory.search("maren money")] == ["Aldo", "Maren Holt"]
    assert memory.search("dragon") == []
    assert len(memory.search("  ")) == 3


def test_update_pin_and_delete_change_the_store():
    memory = make_memory()
    maren = memory.search("blacksmith")[0]
    assert memory.update(maren.id, "The blacksmith, angry.").text == "The blacksmith, angry."
    assert memory.set_pinned(maren.id, True).pinned
    assert memory.entries()[0].pinned
    memory.delete(maren.id)
    assert maren.id not in {e.id for e in memory.entries()}
    with pytest.raises(MemoryEntryNotFound, match="no longer exists"):
        memory.update(maren.id, "again")
    with pytest.raises(MemoryEntryNotFound):
        memory.delete(maren.id)


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="Unknown memory kind"):
        InMemoryMemoryView().add("weather", "Rain", "It rains.")


def test_the_game_hook_finds_an_attached_memory():
    class GameWithMemory:
        memory = make_memory()

    assert memory_of(object()) is None
    found: MemoryView = memory_of(GameWithMemory())
    assert found is GameWithMemory.memory
