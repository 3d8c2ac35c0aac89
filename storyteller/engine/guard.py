"""The loop guard: small models answer with nothing, repeat their last answer, or loop
inside one answer. Such an answer is told again: an empty or near-empty one with a new
seed, a repeated or looping one with a new seed and a higher repeat penalty.
(Clover-Edition storymanager.py and the storybench notes do the same.)"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from difflib import SequenceMatcher

from storyteller.errors import ModelError
from storyteller.generation import GenerationStats, SamplingOptions

MIN_ANSWER_CHARS = 10  # shorter answers count as empty
EMPTY_RETRIES = 2  # an empty answer gets this many more tries
REPEAT_RETRIES = 2  # a repeating answer gets this many more tries
REPEAT_PENALTY_STEP = 0.15  # added to repeat_penalty on each repeat retry
MAX_REPEAT_PENALTY = 2.0  # SamplingOptions' upper bound
SIMILAR_TO_PREVIOUS = 0.85  # difflib ratio above which an answer repeats the last turn
LOOP_NGRAM = 6  # a run of this many words ...
LOOP_COUNT = 3  # ... appearing this many times in one answer is a loop

EMPTY, REPEAT = "empty", "repeat"

Attempt = Callable[[SamplingOptions], tuple[str, GenerationStats]]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def repeats_previous(answer: str, previous: str) -> bool:
    if not previous:
        return False
    return SequenceMatcher(None, _words(answer), _words(previous)).ratio() >= SIMILAR_TO_PREVIOUS


def loops_inside(answer: str) -> bool:
    words = _words(answer)
    ngrams = Counter(tuple(words[i:i + LOOP_NGRAM]) for i in range(len(words) - LOOP_NGRAM + 1))
    return bool(ngrams) and max(ngrams.values()) >= LOOP_COUNT


def judge(answer: str, previous: str) -> str | None:
    """EMPTY, REPEAT, or None for an answer worth keeping."""
    if len(answer.strip()) < MIN_ANSWER_CHARS:
        return EMPTY
    if repeats_previous(answer, previous) or loops_inside(answer):
        return REPEAT
    return None


def guarded_answer(attempt: Attempt, options: SamplingOptions, previous: str,
                   seed_for: Callable[[int], int]) -> tuple[str, GenerationStats, SamplingOptions]:
    """Call attempt(options) until the answer passes judge(), within the retry limits.
    seed_for(n) gives the n-th try's seed. When the repeat retries run out, the last
    answer is kept (a repetitive turn beats none); an answer that stays empty raises."""
    retries = {EMPTY: EMPTY_RETRIES, REPEAT: REPEAT_RETRIES}
    kept: tuple[str, GenerationStats, SamplingOptions] | None = None  # best non-empty
    for number in range(EMPTY_RETRIES + REPEAT_RETRIES + 1):
        options = options.model_copy(update={"seed": seed_for(number)})
        answer, stats = attempt(options)
        verdict = judge(answer, previous)
        if verdict is None:
            return answer, stats, options
        if answer.strip():
            kept = (answer, stats, options)
        if retries[verdict] == 0:
            break
        retries[verdict] -= 1
        if verdict == REPEAT:
            penalty = min(options.repeat_penalty + REPEAT_PENALTY_STEP, MAX_REPEAT_PENALTY)
            options = options.model_copy(update={"repeat_penalty": penalty})
    if kept is None:
        raise ModelError(f"The model returned nothing, {number + 1} times; try /retry, "
                            "a larger --max-tokens, or another --model.")
    return kept
