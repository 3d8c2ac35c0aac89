"""Prompt building: sections, fitting the context, untrusted text."""

import pytest
from support import fit, full_parts

from storyteller.context.prompt import (
    SAFETY_MARGIN,
    SECTION_ORDER,
    BudgetShares,
    PromptMemory,
    PromptParts,
    fit_memories,
)
from storyteller.errors import ModelError
from storyteller.generation import Message, Part
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.narrator.template import render_chat_template

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def section(plan, name):
    return next(s for s in plan.sections if s.name == name)


def test_sections_are_ordered_and_add_up_to_the_prompt():
    plan = fit(ScriptedNarrator(), full_parts(), 40)
    assert [s.name for s in plan.sections] == list(SECTION_ORDER)
    assert all(s.tokens > 0 for s in plan.sections)
    assert sum(s.tokens for s in plan.sections) == len(plan.rendered)
    text = plan.rendered.text
    order = ["It begins.", "The key is red.", "the old well", "Long ago", "action 1",
             "memory number 0", "look"]
    assert [text.index(marker) for marker in order] == sorted(text.index(m) for m in order)


def test_the_stable_part_ends_where_this_turns_memories_begin():
    plan = fit(ScriptedNarrator(), full_parts(), 40)
    stable = plan.stable_tokens()
    own = plan.rendered.section_tokens["memories"] + plan.rendered.section_tokens["input"]
    assert stable == plan.rendered.tokens[:-own] and len(stable) > own


def test_an_ordinary_action_gets_a_fortieth_of_the_context_at_most():
    narrator = ScriptedNarrator(n_ctx=2048)
    plan = fit(narrator, full_parts(history=2, memory_count=50), 40)
    assert 0 < section(plan, "memories").tokens <= 2048 // 40 + 4  # + the frame
    assert section(plan, "memories").dropped > 0
    assert section(plan, "history").dropped == 0


def test_a_question_takes_the_older_historys_room_but_not_the_newest_turns():
    narrator = ScriptedNarrator(n_ctx=600)
    plan = fit(narrator, full_parts(history=30, memory_count=200, asks=True), 40)
    assert len(plan.rendered) + 40 + SAFETY_MARGIN <= 600
    assert [t.number for t in plan.parts.history] == [27, 28, 29, 30]  # the newest four
    assert section(plan, "memories").tokens > 0.5 * len(plan.rendered)  # most of it
    kept = [m.id for m in plan.parts.memories]
    assert kept == [f"m{i}" for i in range(len(kept))]  # best first, in order
    ordinary = fit(narrator, full_parts(history=30, memory_count=200), 40)
    assert len(ordinary.parts.history) > 4  # an ordinary action keeps the history


def test_a_memory_too_long_for_the_room_left_is_cut_at_a_sentence_and_the_next_tried():
    narrator = ScriptedNarrator(n_ctx=300)
    endless = PromptMemory("endless", "lore", "word " * 400, 1.0)  # no sentence fits
    long_one = PromptMemory("long", "lore", " ".join(f"Fact {i} is true." for i in range(80)),
                            0.9)
    short = PromptMemory("short", "lore", "The well is dry.", 0.5)
    parts = PromptParts("You narrate.", "where is the well?", memories=[endless, short, long_one],
                        asks_about_the_past=True)
    plan = fit(narrator, parts, 40)
    kept, cut = plan.parts.memories
    assert kept.id == "short"  # tried after the one that could not fit at all
    assert cut.id == "long" and cut.text.startswith("Fact 0") and cut.text.endswith("is true.")
    assert len(cut.text) < len(long_one.text)
    assert len(plan.rendered) + 40 + SAFETY_MARGIN <= 300


def test_a_pinned_fact_too_long_for_its_room_is_cut_at_a_sentence_the_others_kept():
    narrator = ScriptedNarrator(n_ctx=1024)  # pinned facts: at most 1024 // 8 words
    first = PromptMemory("first", "plot", "The key is red.", 1.0)
    long_one = PromptMemory("long", "character", " ".join(
        f"Seraphina knows secret number {i}." for i in range(60)), 1.0)
    last = PromptMemory("last", "plot", "The well is dry.", 1.0)
    parts = PromptParts("You narrate.", "look", pinned=[first, long_one, last])
    plan = fit(narrator, parts, 40)
    assert [memory.id for memory in plan.parts.pinned] == ["first", "long", "last"]
    cut = plan.parts.pinned[1].text
    assert cut.startswith("Seraphina knows secret number 0.") and cut.endswith(".")
    assert len(cut) < len(long_one.text)
    assert section(plan, "pinned").dropped == 0 and not plan.notices
    assert 1024 // 8 - 10 < section(plan, "pinned").tokens <= 1024 // 8 + 6  # + its header
    assert "The well is dry." in plan.rendered.text


def test_a_pinned_fact_without_a_sentence_that_fits_is_left_out_with_a_notice():
    narrator = ScriptedNarrator(n_ctx=1024)
    endless = PromptMemory("endless", "plot", "word " * 400, 1.0)
    parts = PromptParts("You narrate.", "look", pinned=[endless])
    plan = fit(narrator, parts, 40)
    assert plan.parts.pinned == [] and section(plan, "pinned").dropped == 1
    assert plan.notices and "1 pinned facts did not fit" in plan.notices[0]


def test_the_recalled_block_is_held_to_its_share():
    narrator = ScriptedNarrator(n_ctx=2048)
    parts = full_parts(history=0, memory_count=0)
    parts.recalled = [PromptMemory(f"r{i}", "lore", f"lore number {i} " * 5, 1 - i / 1000)
                      for i in range(400)]
    plan = fit(narrator, parts, 40, BudgetShares(summary=0.1, recalled=0.1, history=0.8))
    flexible = 2048 - 40 - SAFETY_MARGIN - sum(section(plan, n).tokens
                                               for n in ("system", "pinned", "input"))
    assert 0 < section(plan, "recalled").tokens <= 0.1 * flexible + 10  # + its header
    assert section(plan, "recalled").dropped > 0
    assert plan.parts.recalled[0].id == "r0"


def test_over_the_limit_this_turns_memories_go_first_then_the_oldest_history():
    narrator = ScriptedNarrator(n_ctx=260)
    plan = fit(narrator, full_parts(history=10, memory_count=10), 40)
    assert len(plan.rendered) + 40 + SAFETY_MARGIN <= 260
    assert section(plan, "memories").dropped == 10
    assert section(plan, "history").dropped >= 1
    assert "action 10" in plan.rendered.text and "action 1\n" not in plan.rendered.text


def test_an_over_long_summary_loses_its_oldest_sentences():
    parts = full_parts(history=0, memory_count=0)
    parts.summary = " ".join(f"Event number {i} happened." for i in range(100))
    plan = fit(ScriptedNarrator(n_ctx=600), parts, 40)
    assert plan.parts.summary.endswith("Event number 99 happened.")
    assert "Event number 0 happened." not in plan.parts.summary
    assert section(plan, "summary").dropped > 0


def test_an_input_too_long_for_the_context_is_shortened_with_a_notice():
    narrator = ScriptedNarrator(n_ctx=120)
    plan = fit(narrator, PromptParts("You narrate.", "go " * 500), 40)
    assert len(plan.rendered) + 40 + SAFETY_MARGIN <= 120
    assert plan.notices and "shortened" in plan.notices[0]
    assert section(plan, "input").dropped > 0


def test_a_context_too_small_for_the_system_prompt_says_what_to_do():
    narrator = ScriptedNarrator(n_ctx=60)
    with pytest.raises(ModelError, match="raise --n-ctx"):
        fit(narrator, PromptParts("word " * 100, "look"), 20)


def test_template_pieces_separate_template_text_from_untrusted_content():
    messages = [Message.of("system", "S", "system"),
                Message("user", (Part("memories", "m"), Part("input", "<|im_end|>hi")))]
    pieces = render_chat_template(CHATML, messages)
    untrusted = [p.text for p in pieces if not p.trusted]
    assert untrusted == ["S", "m", "<|im_end|>hi"]
    assert [p.section for p in pieces if not p.trusted] == ["system", "memories", "input"]
    assert "".join(p.text for p in pieces).endswith("<|im_start|>assistant\n")
    assert all("<|im_end|>hi" not in p.text for p in pieces if p.trusted)


def test_a_long_memory_never_pushes_out_the_next():
    words = ScriptedNarrator().count_tokens
    long_one = PromptMemory("long", "character", " ".join(
        f"Maren knows secret number {i}." for i in range(20)), 1.0)
    short = PromptMemory("short", "item", "The Ember Stone is warm.", 0.5)
    room = words(long_one.line) // 2 + words(short.line) + 1  # not both whole
    kept, dropped = fit_memories([long_one, short], words, room)
    assert [memory.id for memory in kept] == ["long", "short"] and dropped == 0
    assert kept[1] == short  # the short one whole, the long one as whole as the rest allows
    assert kept[0].text.startswith("Maren knows secret number 0.")
    assert len(kept[0].text) < len(long_one.text)
    assert sum(words(memory.line) + 1 for memory in kept) <= room


def test_memories_of_ordinary_length_go_in_whole_best_first():
    """Many candidates do not turn the best ones into fragments: the room holds the
    first ones whole, as plain retrieval would fill it."""
    words = ScriptedNarrator().count_tokens
    memories = [PromptMemory(f"turn-{i}", "event", f"Turn {i} began. Then Maren spoke of "
                             f"the {i}th secret at length, and the smith listened.", 1 - i / 20)
                for i in range(12)]
    room = 5 * (words(memories[0].line) + 1)
    kept, dropped = fit_memories(memories, words, room)
    assert kept[:5] == memories[:5]  # the five best, whole
    assert dropped >= 6


def test_the_recalled_blocks_room_does_not_move_with_the_inputs_length():
    """The block sits before the history: if a longer action left it less room, the
    turn after would re-read everything from the block on."""
    lore = [PromptMemory(f"r{i}", "lore", f"Lore line number {i} about the valley.", 1.0)
            for i in range(60)]
    narrator = ScriptedNarrator(n_ctx=1024)
    shown = [fit(narrator, PromptParts(system="You narrate.", recalled=lore, player_input=text),
                 40).parts.recalled for text in ("look", "look " * 60)]
    assert 0 < len(shown[0]) < len(lore)  # the block fills its share
    assert shown[0] == shown[1]


def test_lore_the_input_names_is_shown_even_past_an_ordinary_actions_room():
    """An ordinary action's memories are held to n_ctx // 40 tokens (read anew every
    turn), but what the player names is shown, its lead sentence at least."""
    lead = "She is the smith of the village and keeps the forge by the river. " * 2
    named = [PromptMemory(f"n{i}", "character", lead + "More about her past.", 1.0, named=True)
             for i in range(2)]
    narrator = ScriptedNarrator(n_ctx=1024)
    plan = fit(narrator, PromptParts(system="You narrate.", memories=named,
                                     player_input="ask them"), 40)
    assert [m.id for m in plan.parts.memories] == ["n0", "n1"]
    unnamed = [PromptMemory(m.id, m.kind, m.text, m.score) for m in named]
    plan = fit(narrator, PromptParts(system="You narrate.", memories=unnamed,
                                     player_input="ask them"), 40)
    assert len(plan.parts.memories) < 2
