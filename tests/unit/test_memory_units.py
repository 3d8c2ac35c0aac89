"""The memory's parts that need neither Chroma nor the embedder: entries, the journal,
keyword activation, scoring, and checking and merging extracted facts."""

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from storyteller.errors import SaveError, WorldError
from storyteller.memory.entries import (
    EVENT_CHUNK_WORDS,
    MemoryEntry,
    event_entries,
    world_entries,
)
from storyteller.memory.extract import FACTS_SCHEMA, Fact, said_of, take_notes, validate
from storyteller.memory.journal import JOURNAL_FILE, MemoryJournal
from storyteller.memory.lorebook import Lorebook
from storyteller.memory.recall import score, wants_context
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World
from storyteller.text import normalize_name

MAREN = MemoryEntry(id="character-maren-holt", kind="character", name="Maren Holt",
                    aliases=("the blacksmith",), text="Maren Holt is the blacksmith.",
                    importance=8, source="world")


def entry(entry_id, kind="character", name="", aliases=(), text="A fact.", **fields):
    return MemoryEntry(id=entry_id, kind=kind, name=name, aliases=aliases, text=text, **fields)


# -- keyword activation -------------------------------------------------------

def test_an_event_is_embedded_without_the_labels_every_event_shares():
    turn = Turn(number=7, input="I hide the key under the oak.", output="Crows watch you.")
    action, story = event_entries(turn)
    assert story.text == (
        "Turn 7. The player: I hide the key under the oak. The story: Crows watch you.")
    assert action.search_text == "I hide the key under the oak."
    assert story.search_text == "I hide the key under the oak.\nCrows watch you."
    lore = entry("c1", text="Maren runs the forge.")
    assert lore.search_text == lore.text


def test_keyword_activation_by_name_alias_and_first_name():
    book = Lorebook([MAREN, entry("character-dr-lena-voss", name="Dr. Lena Voss",
                                  aliases=("Voss",)),
                     entry("character-pell", name="Pell"),
                     entry("location-forge", kind="location", name="the Great Forge"),
                     entry("item-ox", kind="item", name="ox")])
    assert book.mentioned("You greet MAREN's apprentice.") == {"character-maren-holt"}
    assert book.mentioned("ask the Blacksmith") == {"character-maren-holt"}
    assert book.mentioned("Dr. Voss frowns") == {"character-dr-lena-voss"}
    assert book.mentioned("Lena waves") == {"character-dr-lena-voss"}  # first name
    assert book.mentioned("the doctor waves, Dr waves") == set()  # a title is no name
    assert book.mentioned("walk into the great forge") == {"location-forge"}
    assert book.mentioned("Pellham is a town") == set()  # whole words only
    assert book.mentioned("an ox pulls a cart") == set()  # too short to be a key
    assert Lorebook([]).mentioned("anything") == set()


def test_names_compare_without_case_punctuation_or_article():
    assert normalize_name("The  Ember-Stone!") == "ember stone"
    assert normalize_name("the") == "the"
    assert normalize_name("Dr. Lena Voss") == "dr lena voss"


# -- entries -------------------------------------------------------------------

def test_a_turn_becomes_event_chunks_that_stand_alone():
    sentence = "The rain falls on the old roofs of the harbour town tonight. "
    turn = Turn(7, "wait for the ship", sentence * 40)
    action, *events = event_entries(turn)
    assert action.text == "Turn 7. The player: wait for the ship" and action.kind == "event"
    assert len(events) > 3
    for event in events:
        assert event.kind == "event" and event.turn == 7 and event.source == "story"
        assert event.text.startswith("Turn 7. The player: wait for the ship The story:")
        assert len(event.text.split()) <= EVENT_CHUNK_WORDS + 20
    told = " ".join(event.text.split("The story: ")[1] for event in events)
    assert told.split() == turn.output.split()  # every word, once, in order
    assert [e.id for e in event_entries(turn)] == [e.id for e in [action, *events]]  # reindex
    short = event_entries(Turn(7, "wait", "Other words."))  # too short for its own chunk
    assert len(short) == 1 and short[0].id != events[0].id


def test_an_endless_sentence_is_cut_into_chunks():
    events = event_entries(Turn(1, "run", "and then " * 300))
    assert len(events) >= 6
    assert all(len(event.text.split()) <= EVENT_CHUNK_WORDS + 10 for event in events)


def test_entries_round_trip_and_refuse_nonsense():
    assert MemoryEntry.from_json(json.loads(json.dumps(MAREN.to_json()))) == MAREN
    assert MemoryEntry.from_metadata(MAREN.id, MAREN.text, MAREN.metadata()) == MAREN
    with pytest.raises(ValueError, match="kind"):
        entry("x", kind="dragon")
    with pytest.raises(ValueError, match="importance"):
        entry("x", importance=11)


def test_world_lore_becomes_entries_that_name_what_they_are_about():
    world = World.from_toml("w", '''title = "T"
setting = "S"
[[plot]]
name = "the debt"
text = "You owe the guild ten crowns."
importance = 9
pinned = true
''', "w.toml")
    [debt] = world_entries(world.lore)
    assert debt.id == "plot-debt" and debt.pinned and debt.source == "world"
    assert debt.text == "The debt: You owe the guild ten crowns."


@pytest.mark.parametrize(("lore", "problem"), [
    ('[[characters]]\nname = "x"\n', "[[characters]] number 1: text: Field required"),
    ('[[items]]\nname = "x"\ntext = "y"\nimportance = 0\n', "importance: Input should be"),
    ('[[plot]]\nname = "x"\ntext = "y"\ncolour = "red"\n', "colour: Extra inputs"),
    ('characters = ["Maren"]\n', "use [[characters]] tables"),
])
def test_bad_lore_is_one_clear_error(lore, problem):
    with pytest.raises(WorldError) as error:
        World.from_toml("w", f'title = "T"\nsetting = "S"\n{lore}', "w.toml")
    assert problem in str(error.value) and "\n" not in str(error.value)


# -- the journal ---------------------------------------------------------------

def test_the_journal_replays_adds_changes_removes_and_undos(tmp_path):
    journal = MemoryJournal(tmp_path)
    rewritten = MemoryEntry(**{**MAREN.to_json(), "aliases": ("Jory Fenn",),
                               "text": "Maren Holt is a peddler.", "turn": 2})
    orla = entry("character-orla", name="Orla", turn=1, source="notes")
    changed = replace(orla, text="Orla owes you a sword.", turn=2)
    journal.put(orla, 1, new=True)
    journal.write("extracted", 1, facts=1, rejected=0, ms=1.0)
    journal.put(changed, 2, new=False)
    journal.put(rewritten, 2, new=False)  # what older note-taking did to the lore
    pin = entry("pin-1", kind="plot", text="Never trust Orla.", pinned=True, source="player")
    journal.put(pin, None, new=True)
    journal.write("remove", None, id="event-1-0-abc")

    state = MemoryJournal(tmp_path).replay([MAREN])  # read back from disk
    assert state.entries["character-orla"] == changed
    assert state.entries["character-maren-holt"] == MAREN  # a turn never rewrites the lore
    assert state.written_by == {"character-orla": 2}
    assert state.removed == {"event-1-0-abc"} and state.extracted == {1}

    journal.write("undo", 2)
    state = MemoryJournal(tmp_path).replay([MAREN])
    assert state.entries["character-orla"] == orla
    assert set(state.entries) == {"character-maren-holt", "character-orla", "pin-1"}
    journal.write("undo", 1)
    journal.put(entry("character-bren", name="Bren", turn=1), 1, new=True)  # a new turn 1
    state = MemoryJournal(tmp_path).replay([MAREN])
    assert set(state.entries) == {"character-maren-holt", "pin-1", "character-bren"}
    assert state.extracted == set()


def test_a_torn_last_journal_line_is_ignored_and_a_corrupt_one_reported(tmp_path):
    journal = MemoryJournal(tmp_path)
    journal.put(entry("character-orla", name="Orla"), 1, new=True)
    path = tmp_path / JOURNAL_FILE
    with open(path, "a") as file:
        file.write('{"type": "add", "turn": 2, "ent')  # a crash mid-write
    assert set(MemoryJournal(tmp_path).replay([]).entries) == {"character-orla"}
    MemoryJournal(tmp_path).write("extracted", 1)  # appends after cutting the torn line
    assert len(path.read_text().splitlines()) == 2
    with open(path, "a") as file:
        file.write('{"type": "add", "turn": 3, "entry": {"id": "x"}}\n')
    with pytest.raises(SaveError, match="unreadable record"):
        MemoryJournal(tmp_path).replay([])


# -- extraction: checking and merging ------------------------------------------

TURN = Turn(4, "ask the ferryman about the crossing",
            "Tobias Wren, the old ferryman, says the crossing costs three silver coins.")


def fact(**fields):
    return {"kind": "character", "name": "Tobias Wren", "aliases": ["the ferryman"],
            "text": "Tobias Wren charges three silver coins.", "importance": 6, **fields}


def test_facts_are_checked_against_the_schema_and_the_turn():
    ok = validate(json.dumps({"facts": [fact()]}), TURN)
    assert [f.name for f in ok.facts] == ["Tobias Wren"] and not ok.rejected
    assert "not valid facts JSON" in validate('{"facts": [', TURN).rejected[0]
    assert "not valid facts JSON" in validate(json.dumps({"facts": [fact(importance=0)]}),
                                              TURN).rejected[0]
    assert "not valid facts JSON" in validate(json.dumps({"facts": [fact()] * 4}),
                                              TURN).rejected[0]
    mixed = validate(json.dumps({"facts": [fact(name="Bartholomew"), fact(name="you"),
                                           fact(aliases=["he", "ferryman"])]}), TURN)
    assert mixed.rejected == ["'Bartholomew' is not mentioned in the turn",
                              "'you' is not a name"]
    assert mixed.facts[0].aliases == ["ferryman"]  # pronouns and unmentioned aliases go


def test_a_known_full_name_counts_as_mentioned_by_its_alias():
    turn = Turn(2, "ask Maren about the stone", "Maren shakes her head.\nNot here.")
    answer = json.dumps({"facts": [fact(name="Maren Holt", aliases=["the blacksmith"],
                                        text="Maren Holt knows nothing.")]})
    assert validate(answer, turn).rejected == ["'Maren Holt' is not mentioned in the turn"]
    known = validate(answer, turn, {"maren", "maren holt", "blacksmith"})
    assert [f.name for f in known.facts] == ["Maren Holt"]
    assert known.facts[0].aliases == ["the blacksmith"]
    raw_newline = answer.replace("knows nothing.", "knows\nnothing.").replace("\\n", "\n")
    assert validate(raw_newline, turn, {"maren holt"}).facts  # a raw newline is forgiven


def test_the_schema_compiles_to_a_llama_cpp_grammar():
    from llama_cpp.llama_grammar import LlamaGrammar

    grammar = LlamaGrammar.from_json_schema(json.dumps(FACTS_SCHEMA), verbose=False)
    assert 'character' in grammar._grammar and 'facts' in grammar._grammar


def notes_after(facts, entries, turn):
    """The entries once a turn's facts are noted: take_notes' entries over the others."""
    written = take_notes([Fact(**f) for f in facts], entries, turn)
    return {**entries, **{e.id: e for e in written}}


FERRY = Turn(4, "pay the ferryman", "Old Tobias Wren the ferryman takes your coins.")
RIVER = Turn(5, "ask the ferryman about the river", "The ferryman says the river is high.")


def test_a_fact_lands_in_the_entry_of_its_name_or_alias_and_makes_no_duplicate():
    entries = notes_after([fact()], {MAREN.id: MAREN}, FERRY)
    assert set(entries) == {MAREN.id, "character-tobias-wren"}
    tobias = entries["character-tobias-wren"]
    assert (tobias.source, tobias.turn, tobias.aliases) == ("notes", 4, ("the ferryman",))
    assert notes_after([fact()], entries, FERRY) == entries  # nothing new, nothing written

    by_alias = notes_after([fact(kind="plot", name="the ferryman", aliases=[],
                                 text="The ferryman says the river is high.")], entries, RIVER)
    assert set(by_alias) == set(entries)  # into Tobias's note: no second entry
    assert by_alias["character-tobias-wren"] == replace(
        tobias, turn=5, text="Tobias Wren charges three silver coins.\n"
                             "The ferryman says the river is high.")

    about_lore = notes_after([fact(kind="plot", name="the blacksmith", aliases=[],
                                   text="The blacksmith lent you a hammer.")], by_alias, RIVER)
    assert set(about_lore) == set(by_alias) | {"character-maren-holt-notes"}
    assert about_lore[MAREN.id] is MAREN  # the world's entry is never rewritten
    note = about_lore["character-maren-holt-notes"]
    assert (note.kind, note.name, note.aliases, note.source, note.turn, note.text) == (
        "character", "Maren Holt", ("the blacksmith",), "notes", 5,
        "The blacksmith lent you a hammer.")
    again = notes_after([fact(name="Maren Holt", aliases=[], text="Maren Holt is tired.")],
                        about_lore, RIVER)
    assert set(again) == set(about_lore)  # the note about Maren grows; the lore stays
    assert again["character-maren-holt-notes"].text.endswith("hammer.\nMaren Holt is tired.")
    assert again[MAREN.id] is MAREN

    same_id = notes_after([fact(name="Tobias  Wren!", aliases=[], text="Another one.")],
                          {"character-tobias-wren": entry("character-tobias-wren",
                                                          name="Someone")}, FERRY)
    assert set(same_id) == {"character-tobias-wren", "character-tobias-wren-2"}


def test_an_alias_is_kept_only_where_the_turn_says_it_of_that_name():
    assert said_of("the ferryman", ("Tobias Wren",), "Old Tobias Wren the ferryman nods.")
    assert said_of("the blacksmith", ("Maren Holt",), "Maren Holt, the blacksmith, waves.")
    assert said_of("the Gull", ("Orla",), "A captain called Orla, known as the Gull.")
    assert not said_of("Red", ("Maren",), "Maren (Red to her friends) waves.")
    assert said_of("Red", ("Maren",), "Maren (Red) waves.")
    assert not said_of("Jory Fenn", ("Maren Holt",), "Maren Holt waves to Jory Fenn.")
    assert not said_of("Jory Fenn", ("Maren Holt",), "Maren Holt, Jory Fenn and you sit.")
    hostile = [fact(aliases=["the ferryman", "Maren Holt"]),
               fact(aliases=["the river"], text="Tobias Wren rows.")]
    noted = notes_after(hostile, {MAREN.id: MAREN}, Turn(
        4, "wait", "Tobias Wren the ferryman rows; Maren Holt, the river, sings."))
    # "Maren Holt" is another entry's name; "the river" is not said of Tobias
    assert noted["character-tobias-wren"].aliases == ("the ferryman",)


def test_a_note_keeps_its_first_and_newest_facts_within_bounds():
    grown = notes_after([fact()], {}, FERRY)["character-tobias-wren"]
    for number in range(40):
        grown = notes_after([fact(aliases=[], text=f"Tobias Wren did thing number {number}.")],
                            {grown.id: grown}, FERRY)[grown.id]
    lines = grown.text.split("\n")
    assert lines[0] == "Tobias Wren charges three silver coins."
    assert lines[-1] == "Tobias Wren did thing number 39."
    assert len(grown.text) <= 600


# -- scoring -------------------------------------------------------------------

@given(st.floats(0, 1), st.floats(0, 1), st.integers(1, 10), st.integers(0, 300),
       st.integers(0, 300))
def test_score_grows_with_relevance_importance_and_recency(relevance, more, importance,
                                                           age, older):
    now = 400
    memory = entry("x", importance=importance, turn=now - age)
    assert score(memory, max(relevance, more), 0, now) >= score(memory, relevance, 0, now)
    assert score(memory, relevance, now - min(age, older), now) >= score(
        memory, relevance, 0, now)  # a recent mention counts as recent
    less = entry("y", importance=max(1, importance - 1), turn=now - age)
    assert score(memory, relevance, 0, now) >= score(less, relevance, 0, now)


def test_a_relevant_old_memory_beats_a_vaguely_related_recent_one():
    old = entry("event-1", kind="event", importance=3, turn=1)
    recent = entry("event-50", kind="event", importance=3, turn=50)
    assert score(old, 0.5, 0, 60) > score(recent, 0.35, 0, 60)


class FakeVectors:
    """Stands in for the vector index: records what recall embeds and searches, and
    answers with the hits it is given (similarities included)."""

    def __init__(self, hits=()):
        self.hits = list(hits)
        self.embedded: list[str] = []
        self.searched: list = []

    def embed(self, texts):
        self.embedded = list(texts)
        return [np.array([1.0, 0.0])] * len(texts)

    def query(self, vectors, n):
        self.searched = list(vectors)
        return [self.hits[:n] for _ in vectors]


STORY = [Turn(1, "I hide the brass key under the old oak", "You kneel and push it into the moss."),
         Turn(2, "I pay Bartholomew two coins for the ferry",
              "The ferryman pockets them. He hums a song about the salt marsh."),
         Turn(3, "look at the river", "The water runs grey."),
         Turn(4, "where did I hide the brass key?", "You are not sure; the oak, perhaps."),
         Turn(5, "wait", "Nothing happens."),
         Turn(6, "wait", "Rain.")]


def recaller(vector_hits=()):
    from storyteller.memory.index import MemoryIndex
    from storyteller.memory.lexical import LexicalIndex
    from storyteller.memory.lorebook import Mentions
    from storyteller.memory.recall import Recaller
    from storyteller.memory.store import Hit

    words = LexicalIndex(None)
    words.upsert([chunk for turn in STORY for chunk in event_entries(turn)] + [MAREN])
    hits = [Hit(entry, similarity) for entry, similarity in vector_hits]
    vectors = FakeVectors(hits)
    return Recaller(MemoryIndex(vectors, words), Mentions()), vectors


def query(text, recent_from=6, **fields):
    from storyteller.memory.lorebook import Lorebook
    from storyteller.memory.recall import RecallQuery

    return RecallQuery(entries={MAREN.id: MAREN}, removed=set(), hidden=set(),
                       lorebook=Lorebook([MAREN]), turns={t.number: t for t in STORY},
                       recent=STORY[recent_from - 1:], text=text, now=7, **fields)


def test_a_question_only_a_rare_name_answers_is_answered_by_the_lexical_side():
    unrelated = [(event_entries(STORY[2])[0], 0.4)]  # meaning alone finds the river
    memories = recaller(unrelated)[0].recall(query("what did I pay Bartholomew?")).memories
    assert memories[0].entry.id == "turn-2" and memories[0].via == "lexical"
    assert memories[0].turn == STORY[1]  # the whole turn, action and narration


def test_a_turn_found_by_both_searches_and_by_several_chunks_comes_back_once_first():
    chunks = event_entries(STORY[0])
    found = recaller([(chunks[0], 0.6), (chunks[1], 0.5), (event_entries(STORY[2])[0], 0.3)])
    memories = found[0].recall(query("the brass key under the oak")).memories
    assert [m.entry.id for m in memories].count("turn-1") == 1
    assert memories[0].entry.id == "turn-1" and memories[0].via == "both" and memories[0].needed


def test_an_echo_of_the_question_does_not_displace_its_source():
    echo = event_entries(STORY[3])
    source = event_entries(STORY[0])
    found = recaller([(echo[0], 0.9), (echo[1], 0.85), (source[1], 0.5)])[0]
    memories = found.recall(query("where did I hide the brass key?")).memories
    ids = [m.entry.id for m in memories]
    assert ids.index("turn-1") < ids.index("turn-4")


def test_names_in_the_input_come_first_and_turns_the_prompt_shows_never():
    found = recaller([(event_entries(STORY[5])[0], 0.9)])[0]
    memories = found.recall(query("ask the blacksmith about the oak", recent_from=5)).memories
    assert memories[0].entry.id == MAREN.id and memories[0].via == "keyword"
    assert not {"turn-5", "turn-6"} & {m.entry.id for m in memories}  # shown verbatim


def test_a_candidate_a_better_one_already_holds_is_left_out():
    from storyteller.memory.recall import Recalled, select

    words = ("I hide the brass key under the old oak", "You kneel and push it into the moss.")
    told, again = Turn(9, *words), Turn(12, *words)
    items = [Recalled(entry("turn-9", kind="event"), 0.9, "both", told),
             Recalled(entry("turn-12", kind="event"), 0.8, "both", again),
             Recalled(entry("c2", text="The ferry crosses at dawn."), 0.5, "vector")]
    assert [item.entry.id for item in select("the key", items)] == ["turn-9", "c2"]


def test_only_a_short_input_is_also_searched_with_the_last_turn():
    assert wants_context("open it")
    assert not wants_context("where did I hide my aunt's brass key last spring")


def test_the_last_turn_joins_the_search_as_a_second_vector_without_embedding_it_again():
    found, vectors = recaller()
    found.recall(query("open it"), context_vector=np.array([0.0, 1.0]))
    assert vectors.embedded == ["open it"]
    assert len(vectors.searched) == 2
    np.testing.assert_allclose(vectors.searched[1], np.array([1.0, 1.0]) / np.sqrt(2))
    found.recall(query("open it"))
    assert len(vectors.searched) == 1


def test_questions_and_references_to_the_past_are_told_apart_from_actions():
    from storyteller.memory.recall import asks_about_the_past

    for text in ("where did I hide the key?", "What did Caroline say", "remember the ferry",
                 "I greet the ferryman I met two days ago", "I go where we slept last night"):
        assert asks_about_the_past(text)
    for text in ("look around", "open the door", "ask Maren about the stone",
                 "I stack firewood against the back wall", "I fetch water before dawn",
                 "I ask the baker how long the rain will last", "I knock once again"):
        assert not asks_about_the_past(text)


def test_an_ordinary_action_needs_a_past_turn_for_a_rare_word_the_scene_lacks():
    found = recaller()[0]
    needed = {m.entry.id for m in found.recall(query("I walk to the old oak")).memories
              if m.needed}
    assert "turn-1" in needed  # the oak is named once, in the turn that hid the key
    in_scene = found.recall(query("I walk to the old oak", scene="An old oak leans here."))
    assert not any(m.needed for m in in_scene.memories)  # the scene has it already


def test_a_turn_needed_for_a_rare_word_shows_the_sentence_that_holds_it():
    memories = recaller()[0].recall(query("I wade into the marshes")).memories
    needed = next(m for m in memories if m.entry.id == "turn-2")
    assert needed.needed and needed.excerpt == "He hums a song about the salt marsh."


def test_an_ordinary_action_is_not_reminded_of_the_times_it_was_done_before():
    memories = recaller()[0].recall(query("I hide the brass key under the old oak")).memories
    assert "turn-1" in {m.entry.id for m in memories}  # found, and an echo:
    assert not next(m for m in memories if m.entry.id == "turn-1").needed


def test_rare_words_are_those_the_scene_lacks_and_few_entries_hold_in_any_form():
    from storyteller.memory.lexical import LexicalIndex

    words = LexicalIndex(None)
    words.upsert([entry("t1", kind="event", text="Nan confides her secret by the well."),
                  *(entry(f"f{n}", kind="event", text=f"I walk to the well, day {n}.")
                    for n in range(4))])
    asked = "I think of the secret Nan confided by the well, and of Thimble"
    assert words.rare_words(asked, "Nan sits by the fire.", most_entries=3) == [
        "secret", "confided"]  # Nan is in the scene, the well in 5 entries, Thimble in none
    assert words.naming(["Nan confides in you.", "The rain stops."], ["confided"]) == [
        True, False]
