"""The LoCoMo bench's pure parts: a conversation as turns, evidence matching, how each
baseline fills its budget, when storyteller's column is n/a. No model."""

from bench.__main__ import merge_sections
from bench.locomo import (
    Question,
    StoryTurn,
    Tally,
    baseline_prompt,
    found_evidence,
    lexical_rankings,
    nearest_plus_window,
    not_available,
    questions_of,
    recent_window,
    story_turns,
    until_full,
)


def utterance(speaker, dia_id, text):
    return {"speaker": speaker, "dia_id": dia_id, "text": text}


CONVERSATION = {
    "speaker_a": "Ann", "speaker_b": "Bo",
    # sessions out of order in the file, and ten after two: numbers decide
    "session_10_date_time": "9 May, 2023",
    "session_10": [utterance("Bo", "D10:1", "Back again."),
                   utterance("Ann", "D10:2", "Yes, with Zephyrine the parrot.")],
    "session_2_date_time": "8 May, 2023",
    "session_2": [utterance("Ann", "D2:1", "Hi Bo!"), utterance("Bo", "D2:2", "Hi Ann."),
                  utterance("Ann", "D2:3", "I adopted a  cat."),
                  utterance("Bo", "D2:4", "Lovely!")],
}


def test_each_first_speaker_line_with_its_reply_is_a_turn_and_a_date_leads_a_session():
    assert story_turns(CONVERSATION) == [
        StoryTurn("(8 May, 2023) Hi Bo!", "Hi Ann."),
        StoryTurn("I adopted a  cat.", "Lovely!"),
        StoryTurn("", "(9 May, 2023) Back again."),
        StoryTurn("Yes, with Zephyrine the parrot.", ""),
    ]


def test_questions_keep_categories_one_to_four_and_evidence_that_resolves():
    sample = {"conversation": CONVERSATION, "qa": [
        {"question": "What  did Ann adopt?", "answer": "a cat", "evidence": ["D2:3", "D9:9"],
         "category": 4},
        {"question": "Did Bo adopt a dog?", "evidence": ["D2:4"], "category": 5},
        {"question": "Who?", "answer": "x", "evidence": ["D7:1"], "category": 1},
    ]}
    assert questions_of(sample) == [Question("What did Ann adopt?", 4, ("I adopted a  cat.",))]


def test_evidence_is_found_whole_after_folding_whitespace_and_case():
    prompt = "system\n\nI ADOPTED a\ncat.\nLovely!"
    assert found_evidence(prompt, ["I adopted a  cat.", "lovely!", "I adopted a dog."]) == [
        True, True, False]
    assert found_evidence("I adopted a", ["I adopted a cat."]) == [False]  # a part is not it


COSTS = [30, 50, 20, 40, 10]  # five turns' tokens


def test_recent_window_stops_at_the_first_turn_that_does_not_fit():
    assert recent_window(COSTS, 55, ranking=[0, 1]) == [4, 3]  # 10 + 40; 20 more is 70


def test_three_nearest_first_then_the_window_in_what_is_left():
    chosen = nearest_plus_window(COSTS, 110, ranking=[0, 2, 4, 1, 3])
    assert chosen[:3] == [0, 2, 4]  # 60 tokens
    assert chosen[3:] == [3]  # the window: turn 3 (40); turn 1 (50) does not fit


def test_until_full_skips_a_turn_too_long_and_tries_the_next():
    assert until_full(COSTS, 65, ranking=[1, 3, 0, 4, 2]) == [1, 4]  # 50 + 10
    assert sum(COSTS[i] for i in until_full(COSTS, 1000, ranking=[2, 0])) == 50


def test_baseline_prompt_shows_chosen_turns_in_story_order():
    turns = [StoryTurn("a1", "b1"), StoryTurn("a2", "b2"), StoryTurn("", "b3")]
    assert baseline_prompt("SYS", turns, [2, 0], "Q?") == "SYS\n\na1\nb1\n\nb3\n\nQ?"


def test_bm25_ranks_the_turn_with_the_rare_name_first():
    turns = story_turns(CONVERSATION)
    ranking = lexical_rankings(turns, [Question("What is Zephyrine?", 4, ())])[0]
    assert ranking == [3]


def test_shares_per_conversation_and_mean_over_those_with_the_category():
    tally = Tally()
    tally.add("bm25", 2048, "c1", 1, [True, False])
    tally.add("bm25", 2048, "c1", 4, [True, True])
    tally.add("bm25", 2048, "c2", 4, [False])
    assert tally.share("bm25", 2048, "c1") == 0.75
    assert tally.mean("bm25", 2048, ["c1", "c2"], category=1) == 0.5  # c2 has none
    assert tally.mean("bm25", 2048, ["c1", "c2"], category=4) == 0.5
    assert tally.mean("bm25", 4096, ["c1"]) is None


def test_a_missing_command_is_not_available_but_another_failure_is_not_that():
    assert not_available(2, "usage: storyteller [-h] ...\nerror: argument command: "
                            "invalid choice: 'import'")
    assert not not_available(2, "storyteller: conv.jsonl line 3 is not a JSON object")
    assert not not_available(1, "usage: x")


def test_a_partial_run_replaces_its_own_section_and_keeps_the_others():
    old = "# Results\n\nheader\n## Speed\n\nfast\n\n## LoCoMo: x\n\nold\n\n## Cold start\n\ncold\n"
    merged = merge_sections(old, ["## LoCoMo: x\n\nnew", "## Extra\n\nmore"])
    assert merged == ("# Results\n\nheader\n## Speed\n\nfast\n\n## LoCoMo: x\n\nnew\n\n"
                      "## Cold start\n\ncold\n\n## Extra\n\nmore\n")
