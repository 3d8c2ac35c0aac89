"""The story memory with its real parts: the real all-MiniLM-L6-v2 embedder and a real
Chroma, embedded and as a `chroma run` server (the `memory_settings` fixture runs each
test against both). The narrator and extractor are scripted here: the model is beside
the point (test_memory_model.py plays with the real one)."""

import json
import shutil
import threading

import chromadb
import pytest

from storyteller.cli import main
from storyteller.engine.reply import TurnCancelled
from storyteller.engine.session import open_game
from storyteller.errors import MemoryIndexError
from storyteller.memory.embedder import MODEL_NAME, MiniLMEmbedder, shared_embedder
from storyteller.memory.entries import event_entries, world_entries
from storyteller.memory.journal import JOURNAL_FILE, MemoryJournal
from storyteller.memory.store import INDEX_FORMAT, MemoryStore, collection_name
from storyteller.narrator.registry import NOTES_OFF_NOTICE
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign

PLANTED_ACTION = "I bury the brass key beneath the crooked oak behind the mill"
PLANTED_STORY = ("You kneel in the wet earth beneath the crooked oak and bury the brass key, "
                 "then mark the spot with a white stone. From the river, old Tobias Wren the "
                 "ferryman watches and reminds you that you owe him three silver coins.")
TOBIAS = {"kind": "character", "name": "Tobias Wren", "aliases": ["the ferryman"],
          "text": "Tobias Wren, the ferryman, says the player owes him three silver coins.",
          "importance": 7}
PIN = "My sister Ilse waits for me in the city of Varrow."
FILLER_ACTIONS = [
    "look at the clouds", "count the coins in my purse", "whistle a marching song",
    "sit by the fire and warm my hands", "ask the innkeeper for a bowl of stew",
    "walk to the market square", "watch the children play with a ball",
    "sharpen my knife on a whetstone", "read the notices on the chapel door",
    "buy a loaf of bread", "feed the stray dog", "climb the bell tower stairs",
    "listen to the rain on the roof", "mend the hole in my cloak", "practise sword drills",
    "trade stories with a travelling monk", "polish my boots", "write a letter home",
    "play dice with the guards", "study the stars from the hill",
]
FILLER_STORY = [
    "The clouds drift east, grey and heavy, and a cold wind tugs at your sleeves.",
    "The stew is thick with barley; a fiddler starts a slow tune in the corner.",
    "Pigeons scatter across the cobbles as a cart rattles past the fountain.",
    "The bells ring noon; somewhere a baker shouts that the last loaves are going cheap.",
    "Rain hammers the shutters and the fire pops, throwing sparks onto the hearth stones.",
]
NO_FACTS = json.dumps({"facts": []})


def story_narrator():
    return ScriptedNarrator(replies=[PLANTED_STORY] + FILLER_STORY * 30)


def extractor(*first_answers):
    """A scripted extractor: these answers for the first turns, then no facts."""
    return ScriptedNarrator(replies=[json.dumps(a) for a in first_answers] + [NO_FACTS] * 200)


def play(game, text):
    reply = game.submit(text)
    game.settle(reply)
    return reply


def retrieved(reply, via=None):
    return {item["id"]: item for item in reply.trace.retrieved
            if via is None or item["via"] == via}


def test_planted_facts_come_back_after_fifty_unrelated_turns(memory_settings):
    game = open_game(memory_settings, "long", story_narrator(), extractor({"facts": [TOBIAS]}))
    play(game, PLANTED_ACTION)
    assert "Remembered" in game.submit(f"/remember {PIN}").message
    for number in range(55):
        play(game, FILLER_ACTIONS[number % len(FILLER_ACTIONS)])
    assert game.campaign.turns[-1].number == 56

    reply = play(game, "Where did I hide the key I buried?")
    assert f"> {PLANTED_ACTION}" not in reply.trace.prompt  # long gone from the history
    events = [item for item in reply.trace.retrieved if item["id"] == "turn-1"]
    assert events and events[0]["via"] in ("vector", "both")
    assert "bury the brass key" in events[0]["text"]
    assert events[0]["text"] in reply.trace.prompt
    pinned = [item for item in reply.trace.retrieved if item["via"] == "pinned"]
    assert PIN in [item["text"] for item in pinned] and PIN in reply.trace.prompt

    reply = play(game, "I wave at Tobias and ask about the weather")
    tobias = retrieved(reply, "keyword")["character-tobias-wren"]
    assert "three silver coins" in tobias["text"] and tobias["text"] in reply.trace.prompt
    reply = play(game, "hail the ferryman")  # an alias works as well as the name
    assert "character-tobias-wren" in retrieved(reply, "keyword")
    game.close()


def test_an_ordinary_action_reads_memories_only_of_what_the_scene_lacks(memory_settings):
    game = open_game(memory_settings, "scene", story_narrator(), extractor())
    play(game, PLANTED_ACTION)
    for number in range(40):
        play(game, FILLER_ACTIONS[number % len(FILLER_ACTIONS)])

    def memories(reply):
        return {item["id"] for item in reply.trace.retrieved if item["section"] == "memories"}

    # what two turns out of the history did before, in words several entries hold
    again = play(game, "I whistle a marching song and count the coins in my purse")
    assert not memories(again)  # read after Enter, they would add nothing to this turn
    reply = play(game, "I walk back to the crooked oak behind the mill")
    assert "turn-1" in memories(reply)  # the oak was named once: where the key is
    shown = next(m for m in reply.plan.parts.memories if m.id == "turn-1")
    assert shown.said.startswith(PLANTED_ACTION)  # and the sentence naming it, no more
    assert "crooked oak" in shown.text and "Tobias" not in shown.text
    game.close()


def test_undo_and_retry_take_back_the_memories_of_their_turn(memory_settings):
    orla = {"kind": "character", "name": "Orla Venn", "aliases": [],
            "text": "Orla Venn is a smuggler captain who offered the player passage south.",
            "importance": 6}
    maren = {"kind": "character", "name": "Maren", "aliases": [],
             "text": "Maren lent the player her second-best hammer.", "importance": 5}
    hammer = "Maren sighs and hands you her second-best hammer."
    narrator = ScriptedNarrator(replies=[
        "A woman in a salt-stained coat introduces herself as Orla Venn, smuggler captain.",
        hammer, hammer, "Maren shrugs and goes back to the cold forge."])
    game = open_game(memory_settings, "undo", narrator,
                     extractor({"facts": [orla]}, {"facts": [maren]}, {"facts": [maren]}))
    memory, store = game.memory, game.memory.store.vectors
    world_maren = memory.state.entries["character-maren-holt"]
    note = "character-maren-holt-notes"  # what the story noted of Maren, beside her lore
    play(game, "talk to the woman at the bar")
    play(game, "ask Maren for a hammer")
    assert "second-best hammer" in memory.state.entries[note].text
    assert memory.state.entries["character-maren-holt"] == world_maren
    assert "character-orla-venn" in memory.state.entries
    assert _indexed_turns(store) == {1, 2}

    game.submit("/undo")  # turn 2: its note of Maren goes with it
    assert note not in memory.state.entries
    assert store.collection.get(ids=[note])["ids"] == []
    assert _indexed_turns(store) == {1}

    play(game, "ask Maren for a hammer")
    assert "second-best hammer" in _document(store, note)
    reply = game.submit("/retry")  # the new telling has no hammer, and neither has memory
    game.settle(reply)
    assert "hammer" not in game.campaign.turns[-1].output
    assert note not in memory.state.entries and store.collection.get(ids=[note])["ids"] == []
    assert _document(store, "character-maren-holt") == world_maren.text

    game.submit("/undo")
    game.submit("/undo")  # turn 1: Orla never existed
    assert "character-orla-venn" not in memory.state.entries
    assert store.collection.get(ids=["character-orla-venn"])["ids"] == []
    assert _indexed_turns(store) == set()
    game.close()

    reopened = open_game(memory_settings, "undo", ScriptedNarrator())
    assert reopened.memory.state.entries == memory.state.entries
    assert not reopened.memory.index_is_stale()
    reopened.close()


HOSTILE_STORY = ("Maren Holt, the Hearth and Hound's best customer, waves from the forge. "
                 "Jory Fenn, the peddler, leads his donkey past the Hearth and Hound.")
HOSTILE = {"facts": [  # what a small model answered: the peddler and the inn as Maren
    {"kind": "character", "name": "Maren Holt", "aliases": ["Jory Fenn", "The Hearth and Hound"],
     "text": "She's a traveling peddler who brought a donkey to the market.", "importance": 9},
    {"kind": "location", "name": "the Hearth and Hound", "aliases": ["Maren Holt"],
     "text": "The Hearth and Hound is the forge of Maren Holt.", "importance": 9},
    {"kind": "character", "name": "Jory Fenn", "aliases": ["the blacksmith", "Maren"],
     "text": "Jory Fenn is the blacksmith.", "importance": 9}]}
POTS = {"facts": [{"kind": "character", "name": "Jory Fenn", "aliases": [],
                   "text": "Jory Fenn sells copper pots.", "importance": 4}]}


def test_hostile_notes_never_rewrite_the_world_and_go_with_their_turn(settings):
    game = open_game(settings, "hostile", ScriptedNarrator([HOSTILE_STORY]),
                     extractor(HOSTILE, POTS))
    memory, store = game.memory, game.memory.store.vectors
    lore = {entry.id: entry for entry in world_entries(game.world.lore)}
    indexed = store.collection.get(ids=list(lore), include=["documents", "metadatas"])

    def notes():
        return {i: e for i, e in memory.state.entries.items() if e.source == "notes"}

    play(game, "look around the square")
    first = notes()
    play(game, "follow the donkey")
    assert {i: memory.state.entries[i] for i in lore} == lore  # text and aliases as written
    assert store.collection.get(ids=list(lore), include=["documents", "metadatas"]) == indexed
    assert set(notes()) == {"character-maren-holt-notes", "location-hearth-and-hound-notes",
                            "character-jory-fenn-notes"}
    assert all(set(note.aliases) == set(lore[i.removesuffix("-notes")].aliases)
               for i, note in notes().items())  # no alias taken from another entry
    assert {note.turn for note in first.values()} == {1}
    assert notes()["character-jory-fenn-notes"].turn == 2

    game.submit("/undo")  # turn 2's note is taken back with it
    assert notes() == first
    assert "Forgotten: 3 notes" in game.submit("/forget notes").message
    assert notes() == {} and {i: memory.state.entries[i] for i in lore} == lore
    assert "no notes to forget" in game.submit("/forget notes").message
    game.close()
    reopened = open_game(settings, "hostile", ScriptedNarrator())
    assert not any(e.source == "notes" for e in reopened.memory.state.entries.values())
    assert not reopened.memory.index_is_stale()
    reopened.close()


def _indexed_turns(store) -> set[int]:
    events = store.collection.get(where={"kind": "event"}, include=["metadatas"])
    return {metadata["turn"] for metadata in events["metadatas"]}


def _document(store, entry_id) -> str:
    return store.collection.get(ids=[entry_id], include=["documents"])["documents"][0]


def test_reindex_after_deleting_the_index_gives_the_same_retrieval(memory_settings, capsys):
    game = open_game(memory_settings, "rebuild", story_narrator(),
                     extractor({"facts": [TOBIAS]}))
    play(game, PLANTED_ACTION)
    game.submit(f"/remember {PIN}")
    for action in FILLER_ACTIONS[:12]:
        play(game, action)
    game.submit("/forget character-jory-fenn")
    query = "the coins I owe the ferryman for the key"
    now = game.campaign.next_turn_number
    before = game.memory.recall([], query, now)
    game.close()
    _delete_index(memory_settings, game.campaign)

    args = ["reindex", "--campaign", "rebuild", "--saves-dir", str(memory_settings.saves_dir)]
    if memory_settings.memory_url:
        args += ["--memory-url", memory_settings.memory_url]
    assert main(args) == 0
    output = capsys.readouterr()
    assert "Reindexing rebuild" in output.err and "100%" in output.err  # the progress bar
    chunks = sum(len(event_entries(turn)) for turn in game.campaign.turns)
    total = len(game.memory.entries()) + chunks  # world + pin + Tobias, and the story
    assert f"Reindexed {total} memories" in output.out

    reopened = open_game(memory_settings, "rebuild", ScriptedNarrator())
    after = reopened.memory.recall([], query, now)
    assert _summary(after) == _summary(before)
    assert "character-jory-fenn" not in reopened.memory.state.entries  # forgotten stays so
    reopened.close()


def _summary(recall):
    return [(item.entry.id, item.via, round(item.score, 4))
            for item in recall.pinned + recall.memories]


def _delete_index(settings, campaign):
    if settings.memory_url:
        port = int(settings.memory_url.rsplit(":", 1)[1])
        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        client.delete_collection(collection_name(campaign.path))
    else:
        shutil.rmtree(campaign.path / "memory")


def test_a_deleted_index_is_rebuilt_when_the_campaign_opens(settings):
    game = open_game(settings, "auto", story_narrator())
    play(game, PLANTED_ACTION)
    game.close()
    shutil.rmtree(game.campaign.path / "memory")
    reopened = open_game(settings, "auto", ScriptedNarrator())
    story = len(event_entries(reopened.campaign.turns[0]))  # the action, and the narration
    assert reopened.memory.store.count() == len(reopened.memory.entries()) + story == 12
    assert "turn-1" in reopened.submit("/memory where is the brass key buried").message
    reopened.close()


def test_another_embedding_model_means_a_new_index(settings):
    game = open_game(settings, "models", story_narrator())
    play(game, PLANTED_ACTION)
    game.close()
    shared = shared_embedder()
    other = MiniLMEmbedder(model_name="test/another-embedding-model")
    other._model = shared._model  # same weights, another name: the store must not mix them
    store = MemoryStore.open(game.campaign.path, None, other)
    assert store.count() == 0
    assert store.collection.metadata["embedding_model"] == "test/another-embedding-model"
    store.close()
    reopened = open_game(settings, "models", ScriptedNarrator())  # back to the real name
    assert reopened.memory.store.vectors.collection.metadata["embedding_model"] == MODEL_NAME
    assert not reopened.memory.index_is_stale()  # rebuilt with the real model
    reopened.close()


def test_an_index_of_an_older_format_is_rebuilt(settings):
    game = open_game(settings, "format", story_narrator())
    play(game, PLANTED_ACTION)
    game.memory.store.vectors.collection.modify(metadata={"embedding_model": MODEL_NAME,
                                                  "index_format": INDEX_FORMAT - 1})
    game.close()
    reopened = open_game(settings, "format", ScriptedNarrator())
    assert reopened.memory.store.vectors.collection.metadata["index_format"] == INDEX_FORMAT
    assert reopened.memory.store.count() > 0 and not reopened.memory.index_is_stale()
    reopened.close()


class GatedExtractor(ScriptedNarrator):
    """An extractor that answers only once the test opens its gate (or it is cancelled)."""

    def __init__(self, replies):
        super().__init__(replies)
        self.gate = threading.Event()
        self.started = threading.Event()

    def stream(self, prompt, options, cancel, stats, json_schema=None):
        self.started.set()
        while not self.gate.wait(0.01):
            if cancel.is_set():
                stats.stopped_by = "cancel"
                return
        yield from super().stream(prompt, options, cancel, stats, json_schema)


def test_extraction_runs_after_the_turn_and_the_next_turn_never_waits_for_it(settings):
    gated = GatedExtractor([json.dumps({"facts": [TOBIAS]})])
    game = open_game(settings, "background", story_narrator(), gated)
    reply = game.submit(PLANTED_ACTION)
    assert reply.turn is not None  # the turn is played and saved; extraction is pending
    assert gated.started.wait(30)
    reply = game.submit("ask Tobias about the river")  # told while turn 1's notes wait
    assert reply.turn.number == 2 and "character-tobias-wren" not in retrieved(reply)
    gated.gate.set()
    game.settle(reply)
    assert "character-tobias-wren" in game.memory.state.entries
    reply = game.submit("ask Tobias about the coins")
    assert "character-tobias-wren" in retrieved(reply, "keyword")
    game.settle(reply)
    journal = MemoryJournal(game.campaign.path).records
    assert [r["turn"] for r in journal if r["type"] == "extracted"] == [1, 2, 3]
    game.close()


class OneContextModel(ScriptedNarrator):
    """Narrates and takes notes under one lock, as one llama.cpp context does; its notes
    wait at a gate, holding the lock, until the test opens it (or they are stopped)."""

    def __init__(self):
        super().__init__([PLANTED_STORY] + FILLER_STORY)
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.noting = threading.Event()

    def stream(self, prompt, options, cancel, stats, json_schema=None):
        with self.lock:
            if json_schema is None:
                yield from super().stream(prompt, options, cancel, stats)
                return
            self.noting.set()
            while not self.gate.wait(0.01):
                if cancel.is_set():
                    stats.stopped_by = "cancel"
                    return
            yield json.dumps({"facts": [TOBIAS]})


def test_a_turn_stops_the_notes_that_hold_its_model_and_they_are_taken_after_it(settings):
    model = OneContextModel()
    game = open_game(settings, "yield", model, model)
    game.submit(PLANTED_ACTION)
    assert model.noting.wait(30)  # turn 1's notes hold the model's lock
    told = []
    turn = threading.Thread(target=lambda: told.append(game.submit("row across")))
    turn.start()
    turn.join(30)  # a turn that waited for the notes would wait for the gate: forever
    assert told and told[0].turn.number == 2
    model.gate.set()
    game.settle()
    assert "character-tobias-wren" in game.memory.state.entries  # turn 1's, taken again
    assert (game.memory.notes.noted, game.memory.notes.stopped) == (2, 1)
    game.close()


def extraction_running(settings, name):
    """A game whose first turn is played and whose extraction waits at a closed gate."""
    gated = GatedExtractor([json.dumps({"facts": [TOBIAS]})])
    game = open_game(settings, name, story_narrator(), gated)
    game.submit(PLANTED_ACTION)
    assert gated.started.wait(30)
    return game


def test_undo_cancels_a_running_extraction(settings):
    game = extraction_running(settings, "cancel")
    assert game.submit("/undo").undone.number == 1  # the gate never opens: cancelled
    game.settle()  # returns: the extraction stopped (an uncancelled one would wait forever)
    assert "character-tobias-wren" not in game.memory.state.entries
    assert MemoryJournal(game.campaign.path).records == []  # it wrote nothing
    game.close()


def test_an_extraction_cut_short_by_quitting_is_redone_on_the_next_start(settings):
    game = extraction_running(settings, "quit")
    game.close(finish=False)  # quitting: the running extraction is cancelled
    game.memory.record(game.campaign.turns[-1])  # a turn that ends after the quit
    assert game.memory.writer._jobs.unfinished_tasks == 0  # nothing is queued once closed
    assert "character-tobias-wren" not in MemoryJournal(game.campaign.path).replay([]).entries

    reopened = open_game(settings, "quit", ScriptedNarrator(), extractor({"facts": [TOBIAS]}))
    reopened.memory.settle()  # the catch-up extraction of turn 1, in the background
    assert "character-tobias-wren" in reopened.memory.state.entries
    assert not reopened.memory.index_is_stale()
    reopened.close()


def test_unusable_extractor_output_is_logged_and_skipped(settings, caplog):
    answers = ["this is not JSON", json.dumps({"facts": [{**TOBIAS, "name": "Bartholomew"}]}),
               json.dumps({"facts": [{**TOBIAS, "importance": 99}]})]
    game = open_game(settings, "bad", story_narrator(), ScriptedNarrator(replies=answers))
    for action in (PLANTED_ACTION, "wait", "wait again"):
        reply = play(game, action)
        assert reply.turn is not None and not reply.notices
    assert set(game.memory.state.entries) == {e.id for e in game.memory._world}
    messages = [record.getMessage() for record in caplog.records]
    assert any("turn 1" in m and "not valid facts JSON" in m for m in messages)
    assert any("turn 2" in m and "'Bartholomew' is not mentioned" in m for m in messages)
    assert any("turn 3" in m and "importance" in m for m in messages)
    journal = [json.loads(line) for line in (game.campaign.path / JOURNAL_FILE).open()]
    assert [(r["turn"], r["facts"], r["rejected"]) for r in journal] == [(1, 0, 1), (2, 0, 1),
                                                                       (3, 0, 1)]
    game.close()


def test_by_default_a_narrator_under_1b_parameters_takes_no_notes_and_says_so(settings):
    auto = settings.model_copy(update={"extractor_model": "auto"})
    small, big = ScriptedNarrator(), ScriptedNarrator()
    small.parameters, big.parameters = 135 * 10**6, 3 * 10**9
    game = open_game(auto, "small", small)
    assert game.memory.extractor is None and game.opening_notices == [NOTES_OFF_NOTICE]
    game.close()
    game = open_game(auto, "big", big)
    assert game.memory.extractor is not None and game.opening_notices == []
    game.close()
    game = open_game(settings, "off", big)  # --extractor-model off: off, and nothing to say
    assert game.memory.extractor is None and game.opening_notices == []
    game.close()


def test_memory_commands(settings):
    game = open_game(settings, "commands", story_narrator())
    play(game, PLANTED_ACTION)
    reply = game.submit(f"/remember {PIN}")
    pin_id = reply.message.split("(")[1].split(";")[0]
    assert pin_id.startswith("pin-") and PIN in reply.message
    assert "Already remembered" in game.submit(f"/remember {PIN}").message
    listing = game.submit("/memory").message
    assert f"pinned plot      {pin_id}" in listing and "character-maren-holt" in listing
    assert f"{len(event_entries(game.campaign.turns[0]))} story passages" in listing

    assert "turn-1" in game.submit("/memory buried brass key").message
    assert "Forgotten" in game.submit("/forget turn-1").message  # every passage of the turn
    assert "turn-1" not in game.submit("/memory buried brass key").message
    assert "0 story passages" in game.submit("/memory").message
    assert "Forgotten" in game.submit(f"/forget {pin_id}").message
    assert pin_id not in game.submit("/memory").message
    assert "No memory with id 'pin-nothing'" in game.submit("/forget pin-nothing").message
    assert "Usage: /remember TEXT" in game.submit("/remember").message
    help_text = game.submit("/help").message
    assert all(name in help_text for name in ("/remember TEXT", "/forget ID", "/memory [QUERY]"))
    game.close()

    reopened = open_game(settings, "commands", ScriptedNarrator())  # all of it was saved
    assert pin_id not in reopened.memory.state.entries
    assert not reopened.memory.index_is_stale()
    reopened.close()


@pytest.mark.parametrize("world", ["emberfall", "lanternsea", "glassorchid", "perihelion"])
def test_a_world_lore_is_remembered_from_the_first_turn(settings, world):
    settings.world = world
    game = open_game(settings, world, ScriptedNarrator())
    lore = game.world.lore
    assert {entry.kind for entry in lore} == {"character", "location", "item", "plot"}
    character = next(entry for entry in lore if entry.kind == "character")
    reply = play(game, f"I look for {character.name}")
    assert f"character-{character.name.split()[0].lower()}" in " ".join(
        retrieved(reply, "keyword"))
    assert character.text.split(".")[0] in reply.trace.prompt
    game.close()


def test_an_unreachable_memory_server_is_one_clear_error(settings):
    settings.memory_url = "http://127.0.0.1:9"  # the discard port: nothing answers
    with pytest.raises(MemoryIndexError, match="Cannot reach the Chroma server at http://127"):
        open_game(settings, "offline", ScriptedNarrator())
    settings.memory_url = "ftp://example"
    with pytest.raises(MemoryIndexError, match="Invalid --memory-url 'ftp://example'"):
        open_game(settings, "offline", ScriptedNarrator())
    assert Campaign.load(settings.saves_dir, "offline").turns == []  # nothing lost


def test_reindex_of_an_unknown_campaign_is_one_clear_line(settings, capsys):
    assert main(["reindex", "--campaign", "nowhere", "--saves-dir", str(settings.saves_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("storyteller: No campaign named 'nowhere'") and "\n" not in error


def test_the_memory_can_be_browsed_edited_pinned_and_deleted(settings):
    """What a memory browser needs: list by kind, search, edit, pin, delete."""
    from storyteller.memory.view import MemoryEntryNotFound

    game = open_game(settings, "browse", story_narrator())
    play(game, PLANTED_ACTION)
    memory = game.memory
    assert {e.kind for e in memory.entries("character")} == {"character"}
    assert {e.turn for e in memory.entries("event")} == {1}
    assert memory.search("Maren")[0].id == "character-maren-holt"  # by name first
    assert any(e.id.startswith("event-1-") for e in memory.search("the buried brass key"))
    edited = memory.update("character-maren-holt", "Maren Holt is a retired blacksmith.")
    assert memory.set_pinned(edited.id, True).pinned
    reply = play(game, "wait")
    assert "Maren Holt is a retired blacksmith." in [i["text"] for i in reply.trace.retrieved
                                                     if i["via"] == "pinned"]
    memory.delete("character-maren-holt")
    with pytest.raises(MemoryEntryNotFound):
        memory.delete("character-maren-holt")
    with pytest.raises(MemoryEntryNotFound):
        memory.update(memory.entries("event")[0].id, "rewritten")
    game.close()
    reopened = open_game(settings, "browse", ScriptedNarrator())
    assert "character-maren-holt" not in reopened.memory.state.entries
    assert not reopened.memory.index_is_stale()
    reopened.close()


def test_a_turn_is_told_at_once_while_the_last_turn_is_still_noted(settings):
    """Note-taking can take minutes on a busy machine: the next turn never waits for it
    (the last turn is in its prompt verbatim), and Esc still stops the narration."""
    gated = GatedExtractor([json.dumps({"facts": [TOBIAS]})])
    game = open_game(settings, "esc", story_narrator(), gated)
    game.submit(PLANTED_ACTION)
    assert gated.started.wait(30)
    assert game.submit("ask Tobias about the river").turn.number == 2  # the gate is shut
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TurnCancelled):
        game.submit("row across", cancel=cancel)
    assert len(game.campaign.turns) == 2
    gated.gate.set()
    game.close()
