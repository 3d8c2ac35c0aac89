"""An imported world plays: a campaign starts in it and a keyword from the file brings
its entry into the turn's prompt (real embedder and Chroma; the narrator is scripted,
the model is beside the point here)."""

import shutil

from interop_support import REPO, SHARED

from storyteller.context.prompt import PINNED_FRACTION
from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.interop.importer import import_world
from storyteller.text import split_sentences


def game_in(settings, tmp_path, source, campaign):
    """A new campaign in a world imported into a copy of the shipped prompts folder."""
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    settings.prompts_dir = prompts
    settings.world = import_world(source, prompts / "worlds").stem
    return open_game(settings, campaign, ScriptedNarrator())


def recalled_by_keyword(reply) -> set[str]:
    return {item["id"] for item in reply.trace.retrieved if item["via"] == "keyword"}


def test_a_keyword_from_eldoria_brings_its_entry_into_the_prompt(settings, tmp_path):
    game = game_in(settings, tmp_path, SHARED / "Eldoria.json", "eldoria-run")
    try:
        reply = game.submit("I ask about the Shadowfangs and their beasts.")
        game.settle(reply)
        assert "lore-shadowfang" in recalled_by_keyword(reply)
        assert "The Shadowfangs are beasts of darkness" in reply.trace.prompt
    finally:
        game.close()


def test_the_seraphina_card_opens_her_scene_with_her_pinned(settings, tmp_path):
    game = game_in(settings, tmp_path, SHARED / "default_Seraphina.png", "glade-run")
    try:
        assert game.memory.state.entries["character-seraphina"].pinned
        reply = game.submit("I look around the glade.")
        game.settle(reply)
        assert "You wake with a start" in reply.trace.prompt  # the opening
        # The opening names the glade: its entry is in the scene's block before the history.
        assert "lore-glade" in {item["id"] for item in reply.trace.retrieved
                                if item["section"] == "recalled"}
        assert "This is my forest glade, a haven of safety" in reply.trace.prompt
    finally:
        game.close()


def test_seraphinas_long_pinned_entry_is_cut_at_a_sentence_not_left_out(settings, tmp_path):
    game = game_in(settings, tmp_path, SHARED / "default_Seraphina.png", "glade-run")
    try:
        entry = game.memory.state.entries["character-seraphina"]
        sentences = [" ".join(s.split()) for s in split_sentences(entry.text)]
        room = game.narrator.n_ctx // PINNED_FRACTION
        assert game.narrator.count_tokens(entry.text) > room  # too long to go in whole
        reply = game.submit("I look around the glade.")
        game.settle(reply)
        pinned = [item for item in reply.trace.retrieved if item["section"] == "pinned"]
        assert [item["id"] for item in pinned] == ["character-seraphina"]
        assert sentences[0] in reply.trace.prompt and sentences[-1] not in reply.trace.prompt
        assert not any("pinned" in notice for notice in reply.notices)
    finally:
        game.close()
