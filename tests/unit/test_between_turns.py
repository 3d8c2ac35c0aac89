"""Background model work (summaries) waits for the turn the player started: its prompt is
read in prefill batches and its answer pauses while a turn reads its prompt."""

import threading
import time

from storyteller.generation import (
    Foreground,
    Message,
    SamplingOptions,
    complete_between_turns,
)
from storyteller.narrator.scripted import ScriptedNarrator

WAIT = 10  # seconds


class PrefillingScripted(ScriptedNarrator):
    """The scripted narrator (canned replies) with a prefill that reads one batch each
    time it is asked, as llama.cpp's does, and says whether a turn was told meanwhile."""

    def __init__(self, foreground, batches=3):
        super().__init__(replies=["one two three four five six"])
        self.foreground, self.left = foreground, batches
        self.read_during_a_turn = 0
        self.words_during_a_turn = 0

    def prefill(self, tokens, cancel, aside=False):
        while self.left and not cancel.is_set():
            self.read_during_a_turn += not self.foreground._idle.is_set()
            self.left -= 1
            time.sleep(0.02)
        return 0

    def stream(self, *args, **kwargs):
        for word in super().stream(*args, **kwargs):
            self.words_during_a_turn += not self.foreground._idle.is_set()
            yield word


def prompt(narrator):
    return narrator.render([Message.of("user", "Summarize.", "input")])


def test_a_summary_waits_while_a_turn_is_told_and_then_finishes():
    foreground = Foreground()
    narrator = PrefillingScripted(foreground)
    answers = []
    with foreground.turn():  # the player pressed Enter
        worker = threading.Thread(target=lambda: answers.append(complete_between_turns(
            narrator, prompt(narrator), SamplingOptions(max_tokens=20), foreground,
            threading.Event())))
        worker.start()
        time.sleep(0.3)
        assert not answers and narrator.left == 3  # nothing read while the turn is told
    worker.join(WAIT)
    text, stats = answers[0]
    assert text == "one two three four five six" and narrator.left == 0
    assert narrator.read_during_a_turn == 0


def test_a_turn_that_starts_mid_answer_pauses_it():
    foreground = Foreground()
    narrator = PrefillingScripted(foreground, batches=0)
    narrator.delay = 0.05
    answers = []
    worker = threading.Thread(target=lambda: answers.append(complete_between_turns(
        narrator, prompt(narrator), SamplingOptions(max_tokens=20), foreground,
        threading.Event())))
    worker.start()
    time.sleep(0.08)  # a word or two in
    with foreground.turn():
        time.sleep(0.4)
        assert not answers
    worker.join(WAIT)
    assert answers[0][0] == "one two three four five six"
    assert narrator.words_during_a_turn <= 1  # the one being made when the turn began


def test_a_cancelled_summary_gives_nothing():
    foreground = Foreground()
    narrator = PrefillingScripted(foreground)
    cancel = threading.Event()
    with foreground.turn():
        answers = []
        worker = threading.Thread(target=lambda: answers.append(complete_between_turns(
            narrator, prompt(narrator), SamplingOptions(max_tokens=20), foreground, cancel)))
        worker.start()
        cancel.set()  # its turns were taken back
        worker.join(WAIT)
    assert answers == [None]


def test_a_summary_goes_on_once_the_turns_first_word_is_out():
    """A summary has a model context of its own: only the turn's prompt reading (which
    decides when its first word comes) waits for nothing."""
    foreground = Foreground()
    narrator = PrefillingScripted(foreground)
    answers = []
    with foreground.turn() as first_word:
        worker = threading.Thread(target=lambda: answers.append(complete_between_turns(
            narrator, prompt(narrator), SamplingOptions(max_tokens=20), foreground,
            threading.Event())))
        worker.start()
        time.sleep(0.3)
        assert not answers and narrator.left == 3  # the turn is reading its prompt
        first_word()
        worker.join(WAIT)
        assert answers[0][0] == "one two three four five six"  # while the turn goes on
