"""Importing SillyTavern World Info files and character cards (the two real files in
../shared/data/sillytavern, and cards the tests write), and its chats in and out."""

import json
from datetime import UTC, datetime

import pytest
from interop_support import SHARED, card_chunk, png, write_json

from storyteller.errors import SaveError
from storyteller.memory.entries import world_entries
from storyteller.memory.lorebook import Lorebook
from storyteller.storage.interop.importer import import_world
from storyteller.storage.interop.sillytavern import read_chat, write_chat
from storyteller.storage.worlds import World, read_world_text


def imported(path, worlds_dir, **options) -> World:
    """Import, then load the world as the game does; its lore must become entries."""
    written = import_world(path, worlds_dir, **options)
    world = World.from_toml(written.stem, read_world_text(written), str(written))
    assert len(world_entries(world.lore)) == len(world.lore)
    return world


def by_name(world: World) -> dict:
    return {item.name: item for item in world.lore}


# -- the real files -----------------------------------------------------------------

def test_eldoria_world_info_becomes_lore_with_its_keys(tmp_path):
    world = imported(SHARED / "Eldoria.json", tmp_path)
    assert (tmp_path / "eldoria.toml").exists() and world.title == "Eldoria"
    assert world.setting and not world.opening
    lore = by_name(world)
    assert list(lore) == ["eldoria", "shadowfang", "glade", "power"]  # no comments: first key
    assert lore["eldoria"].aliases == ("wood", "forest", "magical forest")
    assert lore["shadowfang"].aliases == ("beast", "monster", "monsters", "beasts")
    assert all(item.kind == "lore" and not item.pinned for item in world.lore)
    assert all(item.importance == 5 for item in world.lore)  # every order is 100
    assert lore["glade"].placement == {"uid": 2, "order": 100, "position": 0}
    eldoria = lore["eldoria"].text
    assert len(eldoria) > 1500  # 1,551 characters in the file, more than the old limit
    assert eldoria.startswith('You: "What is Eldoria?"\nThe narrator: *Seraphina turns')
    assert "{{" not in "".join(item.text for item in world.lore)


def test_a_keyword_from_eldoria_brings_its_entry(tmp_path):
    world = imported(SHARED / "Eldoria.json", tmp_path)
    lorebook = Lorebook(world_entries(world.lore))
    assert lorebook.mentioned("Are there monsters in this forest?") == {"lore-shadowfang",
                                                                       "lore-eldoria"}
    assert lorebook.mentioned("I rest in the glade.") == {"lore-glade"}


def test_the_seraphina_card_becomes_a_world_around_her(tmp_path):
    world = imported(SHARED / "default_Seraphina.png", tmp_path)
    assert world.name == "seraphina" and world.title == "Seraphina"
    assert "Seraphina" in world.setting  # the card has no scenario
    assert world.opening.startswith("*You wake with a start")
    assert world.openings == ()
    seraphina = by_name(world)["Seraphina"]
    assert seraphina.kind == "character" and seraphina.pinned and seraphina.importance == 10
    assert '"pink hair"' in seraphina.text
    assert 'You: "Describe your traits?"\nSeraphina: *Seraphina\'s gentle smile' in seraphina.text
    book = [item for item in world.lore if item.kind == "lore"]
    assert [item.name for item in book] == ["eldoria", "shadowfang", "glade", "power"]
    assert book[2].aliases == ("safe haven", "refuge")
    assert book[0].text.startswith('You: "What is Eldoria?"\nSeraphina: *Seraphina turns')
    assert book[0].placement["insertion_order"] == 100
    assert book[0].placement["position"] == "before_char"
    everything = " ".join([world.opening, *(item.text for item in world.lore)])
    assert "{{" not in everything and "<USER>" not in everything


# -- cards the tests write ------------------------------------------------------------

def book_entry(keys, content, **fields):
    return {"keys": keys, "content": content, "enabled": True, "insertion_order": 100,
            "extensions": {}, **fields}


CARD = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
    "name": "Captain Mira Vale", "nickname": "the Captain",
    "description": "{{char}} commands the airship Kestrel. She trusts {{user}} with the maps.",
    "personality": "Bold, and loyal to <USER>.",
    "scenario": "{{user}} is {{char}}'s navigator. {{user}} HAS a storm to sail through.",
    "first_mes": "{{char}} hands you a chart. \"{{user}}, we sail at dawn.\"",
    "alternate_greetings": ["<BOT> waves from the deck.", "{{User}}'s cabin is cold."],
    "mes_example": "<START>\n{{char}}: Hold fast!", "creator_notes": "For testing.",
    "tags": ["sky"], "extensions": {"talkativeness": "0.5"},
    "character_book": {"name": "Kestrel", "entries": [
        book_entry(["Kestrel", "the airship"], "The Kestrel is {{char}}'s ship.",
                   comment="The Kestrel", constant=True, insertion_order=10),
        book_entry(["storm"], "A storm that scares {{user}}.", selective=True,
                   secondary_keys=["lightning", "{{char}}"],
                   extensions={"selectiveLogic": 3, "depth": 4}, insertion_order=50),
        book_entry(["map"], "The maps are in the chart room.", selective=True,
                   secondary_keys=["stolen"], extensions={"selectiveLogic": 2},
                   insertion_order=50),
        book_entry(["cargo"], "Secret cargo.", enabled=False),
        book_entry(["reef"], "", insertion_order=999),
        book_entry(["/wyverns?/i", "wyvern rider"], "Wyverns hunt the clouds.",
                   insertion_order=999),
    ]}}}


def test_a_json_card_maps_scenario_greetings_book_and_macros(tmp_path):
    world = imported(write_json(tmp_path / "mira.json", CARD), tmp_path / "worlds")
    assert world.name == "captain-mira-vale" and world.title == "Captain Mira Vale"
    assert world.setting == ("You are Captain Mira Vale's navigator. You have a storm to "
                             "sail through.")
    assert world.opening == 'Captain Mira Vale hands you a chart. "You, we sail at dawn."'
    assert world.openings == ("Captain Mira Vale waves from the deck.", "Your cabin is cold.")
    lore = by_name(world)
    mira = lore["Captain Mira Vale"]
    assert mira.aliases == ("the Captain",) and mira.pinned
    assert mira.text == ("Captain Mira Vale commands the airship Kestrel. She trusts you "
                         "with the maps.\n\nPersonality: Bold, and loyal to you.")
    kestrel = lore["The Kestrel"]  # "Kestrel" is its name again, without the article
    assert kestrel.pinned and kestrel.aliases == ("the airship",)
    storm = lore["storm"]
    assert storm.selective and storm.selective_logic == "AND ALL"
    assert storm.secondary_keys == ("lightning", "Captain Mira Vale")
    assert storm.text == "A storm that scares you."
    assert storm.placement["extensions"] == {"selectiveLogic": 3, "depth": 4}
    assert lore["map"].selective_logic == "NOT ANY"
    assert "cargo" not in lore and "reef" not in lore  # disabled; no text
    wyverns = lore["wyvern rider"]  # a /regex/ key cannot be matched as words
    assert wyverns.aliases == () and wyverns.placement["regex_keys"] == ["/wyverns?/i"]
    # insertion orders 10, 50, 50, 999: spread over 1-10 by rank
    assert [lore[n].importance for n in ("The Kestrel", "storm", "map", "wyvern rider")] == [
        1, 5, 5, 10]
    text = (tmp_path / "worlds" / "captain-mira-vale.toml").read_text(encoding="utf-8")
    assert "# Not imported from the card: creator_notes, extensions, mes_example, tags." in text
    assert "# Left out: 1 disabled entries, 1 entries without text." in text


def test_the_storm_entry_is_gated_by_its_secondary_keys(tmp_path):
    world = imported(write_json(tmp_path / "mira.json", CARD), tmp_path / "worlds")
    lorebook = Lorebook(world_entries(world.lore))
    assert "lore-storm" not in lorebook.mentioned("A storm is coming.")
    assert "lore-storm" in lorebook.mentioned("Lightning splits the storm; Captain Mira "
                                              "Vale holds the wheel.")
    assert "lore-map" in lorebook.mentioned("Where is the map?")
    assert "lore-map" not in lorebook.mentioned("The map was stolen!")


def v3_card(name: str, **entry_fields) -> dict:
    entry = {"keys": ["/star(s)?/", "sextant"], "content": "@@depth 4\n@@role system\n"
             "Stars guide {{char}}.", "enabled": True, "insertion_order": 100,
             "use_regex": True, "extensions": {}, **entry_fields}
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": {
        "name": name, "description": "A navigator.", "first_mes": "Hello.",
        "group_only_greetings": [], "character_book": {"entries": [entry]}}}


def test_a_v3_png_card_wins_over_its_v2_copy_and_keeps_decorators(tmp_path):
    path = tmp_path / "card.png"
    path.write_bytes(png(card_chunk("chara", {"spec": "chara_card_v2",
                                              "data": {"name": "Old Copy"}}),
                         card_chunk("ccv3", v3_card("Orrin"))))
    world = imported(path, tmp_path / "worlds")
    assert world.title == "Orrin" and by_name(world)["Orrin"].text == "A navigator."
    [stars] = [item for item in world.lore if item.kind == "lore"]
    assert stars.text == "Stars guide Orrin."
    assert stars.name == "Stars guide Orrin."  # every key is a regex: named by its text
    assert stars.aliases == () and stars.placement["regex_keys"] == ["/star(s)?/", "sextant"]
    assert stars.placement["decorators"] == ["@@depth 4", "@@role system"]
    text = path.with_name("worlds").joinpath("orrin.toml").read_text(encoding="utf-8")
    assert "(SillyTavern character card V3)" in text.splitlines()[0]


def test_world_info_fields_map_as_sillytavern_reads_them(tmp_path):
    entries = {
        "0": {"uid": 0, "key": ["harbor"], "keysecondary": ["fog"], "comment": "Harbor",
              "content": "The harbor of {{char}}.", "selective": True, "selectiveLogic": 1,
              "order": 1, "position": 4, "depth": 2, "probability": 60, "group": "",
              "characterFilter": {"names": [], "isExclude": False}, "sticky": None},
        "1": {"uid": 1, "key": ["inn"], "content": "The inn.", "order": 100,
              "selectiveLogic": 7},
        "2": {"uid": 2, "key": [], "content": "Rain falls on the town every evening.",
              "constant": True, "order": 100},
        "3": {"uid": 3, "key": ["crypt"], "content": "Hidden.", "disable": True},
        "4": {"uid": 4, "key": ["well"], "content": "The old well.", "order": 250},
    }
    world = imported(write_json(tmp_path / "Port Town.json", {"entries": entries}),
                     tmp_path / "worlds")
    assert world.name == "port-town" and world.title == "Port Town"
    lore = by_name(world)
    harbor = lore["Harbor"]
    assert harbor.aliases == ()  # its one key is its name
    assert harbor.text == "The harbor of the narrator."
    assert harbor.secondary_keys == ("fog",) and harbor.selective_logic == "NOT ALL"
    assert harbor.placement == {"uid": 0, "order": 1, "position": 4, "depth": 2,
                                "probability": 60, "characterFilter": {"isExclude": False}}
    assert lore["inn"].selective_logic == "AND ANY"  # unknown logic: SillyTavern's default
    rain = lore["Rain falls on the town every"]  # no comment, no key: its first words
    assert rain.pinned
    assert "crypt" not in lore
    assert [lore[n].importance for n in ("Harbor", "inn", "well")] == [1, 5, 10]


def test_an_entry_longer_than_the_world_format_allows_is_cut_at_a_sentence(tmp_path):
    saga = "The war lasted a hundred years, and nobody remembers why. " * 500  # 29,500
    world = imported(write_json(tmp_path / "saga.json", {"entries": {"0": {
        "key": ["war"], "content": saga}}}), tmp_path / "worlds")
    text = world.lore[0].text
    assert 19_900 < len(text) <= 20_000 and text.endswith("nobody remembers why.")
    written = (tmp_path / "worlds" / "saga.toml").read_text(encoding="utf-8")
    assert "# 1 entries were cut at a sentence to 20000 characters." in written


def test_a_character_book_alone_is_a_lorebook(tmp_path):
    book = {"name": "Sky Atlas", "entries": [book_entry(["cloud city"], "Floats.")]}
    world = imported(write_json(tmp_path / "book.json", book), tmp_path / "worlds")
    assert world.title == "Sky Atlas" and by_name(world)["cloud city"].text == "Floats."


def test_names_and_replacing_an_existing_world(tmp_path):
    worlds = tmp_path / "worlds"
    source = SHARED / "Eldoria.json"
    first = import_world(source, worlds, name="Forest of Eldoria")
    assert first.name == "Forest of Eldoria.toml"
    before = first.read_bytes()
    with pytest.raises(Exception, match="already in") as error:
        import_world(write_json(tmp_path / "other.json", {"entries": {"0": {
            "key": ["x"], "content": "Other."}}}), worlds, name="Forest of Eldoria")
    assert "\n" not in str(error.value) and first.read_bytes() == before
    import_world(tmp_path / "other.json", worlds, name="Forest of Eldoria", force=True)
    assert "Other." in first.read_text(encoding="utf-8")
    assert sorted(p.name for p in worlds.iterdir()) == ["Forest of Eldoria.toml"]  # no temp


# -- chats ----------------------------------------------------------------------

TURNS = [("look around", "Fog everywhere.\n\nA bell rings."), ('say "hello"', ""),
         ("wait", "Nothing happens.")]


def test_a_written_chat_reads_back_the_same(tmp_path):
    text = write_chat(TURNS, "You arrive at the harbor.", "You", "Narrator",
                      now=datetime(2026, 5, 1, 12, 30, 5, 250_000, tzinfo=UTC))
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"user_name": "You", "character_name": "Narrator",
                        "create_date": "2026-05-01@12h30m05s250ms", "chat_metadata": {}}
    assert lines[1] == {"name": "Narrator", "is_user": False, "is_system": False,
                        "send_date": "2026-05-01T12:30:05.250Z",
                        "mes": "You arrive at the harbor.", "extra": {}}
    assert [line["is_user"] for line in lines[1:]] == [False, True, False, True, False,
                                                       True, False]
    path = tmp_path / "chat.jsonl"
    path.write_text(text, encoding="utf-8")
    chat = read_chat(path)
    assert chat.turns == TURNS and chat.opening == "You arrive at the harbor."
    assert (chat.user_name, chat.character_name) == ("You", "Narrator")


def test_a_sillytavern_chat_joins_sides_skips_system_and_takes_the_chosen_swipe(tmp_path):
    def message(text, is_user, **fields):
        return {"name": "x", "is_user": is_user, "is_system": False, "mes": text, **fields}

    records = [{"user_name": "Ann", "character_name": "Mira", "chat_metadata": {}},
               message("Welcome aboard.", False), message("The wind rises.", False),
               message("hidden note", False, is_system=True),
               message("I take the wheel.", True), message("Steady.", True),
               message("first try", False, swipes=["first try", "The ship turns."],
                       swipe_id=1),
               message("I sleep.", True)]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    chat = read_chat(path)
    assert chat.opening == "Welcome aboard.\n\nThe wind rises."
    assert chat.turns == [("I take the wheel.\n\nSteady.", "The ship turns."),
                          ("I sleep.", "")]


@pytest.mark.parametrize(("lines", "problem"), [
    (['{"user_name": "A"}', '{"is_user": true, "mes": "hi"}', "{not json"], "line 3"),
    (['{"user_name": "A"}', "[1, 2]"], "line 2"),
    (['{"user_name": "A"}', '{"is_user": true}'], "line 2"),
    (['{"is_user": true, "mes": "hi"}'], "line 1"),
    ([], "empty"),
])
def test_a_bad_chat_is_one_save_error_naming_file_and_line(tmp_path, lines, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(SaveError) as error:
        read_chat(path)
    message = str(error.value)
    assert problem in message and str(path) in message and "\n" not in message
