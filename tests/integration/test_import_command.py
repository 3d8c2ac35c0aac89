"""`storyteller import`: a campaign from each story format, with its memory index built;
a bad line is named and nothing is written (real embedder and Chroma)."""

import json

import pytest

from storyteller.cli import main
from storyteller.engine.session import load_campaign, open_game
from storyteller.memory.embedder import shared_embedder
from storyteller.memory.index import MemoryIndex
from storyteller.memory.story import StoryMemory
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign
from storyteller.storage.export import export_campaign

TURNS = [("I ask the ferryman his name.", "He says he is Quillon, keeper of the ford."),
         ("I pay him.", ""),
         ("", "The river is quiet.")]


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def import_cli(settings, name, path, *extra):
    return main(["import", "--campaign", name, "--saves-dir", str(settings.saves_dir),
                 *extra, str(path)])


def imported(settings, name):
    campaign = Campaign.load(settings.saves_dir, name)
    return [(turn.number, turn.input, turn.output) for turn in campaign.turns]


def index_holds_the_story(settings, name):
    """The index holds every entry of the world and the transcript (opening the game
    would rebuild it otherwise, so this looks before a game opens)."""
    campaign, world = load_campaign(settings, name)
    index = MemoryIndex.open(campaign.path, settings.memory_url, shared_embedder())
    memory = StoryMemory(campaign, world, index, extractor=None)
    try:
        return memory.store.count() > len(campaign.turns) and not memory.index_is_stale()
    finally:
        memory.close()


def test_a_jsonl_of_turns_becomes_a_campaign_with_its_index_built(settings, tmp_path,
                                                                  capsys):
    source = write_lines(tmp_path / "story.jsonl",
                         [{"input": said, "output": told} for said, told in TURNS])
    assert import_cli(settings, "ford", source) == 0
    output = capsys.readouterr()
    assert "Indexing ford" in output.err and "100%" in output.err  # the progress bar
    assert "Imported 3 turns" in output.out
    assert imported(settings, "ford") == [(n, *turn) for n, turn in enumerate(TURNS, 1)]
    assert index_holds_the_story(settings, "ford")
    game = open_game(settings, "ford", ScriptedNarrator())
    try:
        assert game.world.name == settings.world  # the default world, its own opening
        recall = game.memory.recall([], "What was the name of the keeper of the ford?", 4)
        assert "turn-1" in {item.entry.id for item in recall.memories}
    finally:
        game.close()


def test_a_sillytavern_chat_becomes_turns_with_its_greeting_as_the_opening(settings,
                                                                           tmp_path):
    def message(text, is_user, **fields):
        return {"name": "x", "is_user": is_user, "is_system": False, "mes": text, **fields}

    source = write_lines(tmp_path / "chat.jsonl", [
        {"user_name": "Ann", "character_name": "Mira", "chat_metadata": {}},
        message("Welcome aboard the Gull.", False), message("[the chat was renamed]", False,
                                                            is_system=True),
        message("I take the wheel.", True), message("I steer north.", True),
        message("first try", False, swipes=["first try", "The ship turns."], swipe_id=1),
        message("I sleep.", True)])
    assert import_cli(settings, "gull", source, "--world", "emberfall") == 0
    assert imported(settings, "gull") == [
        (1, "I take the wheel.\n\nI steer north.", "The ship turns."), (2, "I sleep.", "")]
    game = open_game(settings, "gull", ScriptedNarrator())
    try:
        assert game.world.opening == "Welcome aboard the Gull."
        assert game.world.title  # the rest of the world is the world's own
    finally:
        game.close()


def test_a_storyteller_export_comes_back_as_the_same_story(settings, tmp_path):
    game = open_game(settings, "original", ScriptedNarrator(["A gull cries.", "Rain."]))
    for action in ("I listen.", "I wait."):
        game.submit(action)
    game.close()
    campaign = Campaign.load(settings.saves_dir, "original")
    exported = export_campaign(campaign, game.world, "json")
    assert import_cli(settings, "copy", exported) == 0
    assert imported(settings, "copy") == imported(settings, "original")
    copy = Campaign.load(settings.saves_dir, "copy")
    assert copy.meta["imported"] == {"file": exported.name, "format": "storyteller export"}


def test_a_sillytavern_export_of_a_played_campaign_imports_to_the_same_turns(settings):
    game = open_game(settings, "played", ScriptedNarrator(["«Wer da?» calls a voice.",
                                                           "Rain falls on the anvil."]))
    for action in ("I call out.", "I wait by the forge."):
        game.submit(action)
    game.close()
    campaign = Campaign.load(settings.saves_dir, "played")
    exported = export_campaign(campaign, game.world, "sillytavern")
    assert import_cli(settings, "again", exported) == 0
    assert imported(settings, "again") == imported(settings, "played")
    again = Campaign.load(settings.saves_dir, "again")
    assert again.meta["imported"]["format"] == "SillyTavern chat"
    assert load_campaign(settings, "again")[1].opening == game.world.opening


def test_prompt_is_refused_in_one_line_while_the_campaign_is_open(settings, capsys):
    game = open_game(settings, "busy", ScriptedNarrator(["Rain."]))
    game.submit("I wait.")
    try:
        assert main(["prompt", "--campaign", "busy", "--saves-dir", str(settings.saves_dir),
                     "I listen."]) == 2
        refusal = capsys.readouterr().err.strip()
        assert "open in another storyteller" in refusal and len(refusal.splitlines()) == 1
    finally:
        game.close()


@pytest.mark.parametrize(("lines", "line"), [
    (['{"input": "a", "output": "b"}', '{"input": "c", "output": "d"}', '{"input": "e",'], 3),
    (['{"input": "a", "output": "b"}', '', '{"input": "c"}'], 3),
    (['{"user_name": "A"}', '{"is_user": true, "mes": "hi"}', '[1]'], 3),
])
def test_a_bad_line_is_named_and_nothing_is_written(settings, tmp_path, capsys, lines, line):
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert import_cli(settings, "broken", source) == 2
    error = capsys.readouterr().err.strip()
    assert str(source) in error and f"line {line}" in error and "\n" not in error
    assert not (settings.saves_dir / "broken").exists()


def test_an_existing_campaign_is_refused_in_one_line_and_left_as_it_was(settings, tmp_path,
                                                                        capsys, files_of):
    game = open_game(settings, "taken", ScriptedNarrator(["Mist."]))
    game.submit("I look.")
    game.close()
    before = files_of(settings.saves_dir / "taken")
    source = write_lines(tmp_path / "story.jsonl", [{"input": "x", "output": "y"}])
    assert import_cli(settings, "taken", source) == 2
    error = capsys.readouterr().err.strip()
    assert "exists already" in error and "\n" not in error
    assert files_of(settings.saves_dir / "taken") == before


def test_an_index_that_cannot_be_built_leaves_no_campaign_behind(settings, tmp_path, capsys):
    source = write_lines(tmp_path / "story.jsonl", [{"input": "x", "output": "y"}])
    assert import_cli(settings, "nowhere", source, "--memory-url", "ftp://nowhere") == 2
    assert "memory-url" in capsys.readouterr().err
    assert not (settings.saves_dir / "nowhere").exists()
