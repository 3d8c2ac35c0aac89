"""The prefill with the real embedded model: what it evaluates while the player reads is
what the next turn reuses, and input during a prefill never leaves a stale cache. And
the sampling that keeps an answer from copying the previous one."""

import threading

from support import RecordingNarrator, common_prefix

from storyteller.engine.session import open_game
from storyteller.generation import Message, SamplingOptions, complete

WAIT = 120  # seconds
TEMPLATE_WRAPPERS = 12  # ChatML around the last user message and the answer's start


class PrefillRecorder(RecordingNarrator):
    """Also keeps, for each prefill: (tokens asked for, tokens evaluated); and after each
    generation, the tokens the cache held."""

    def __init__(self, inner):
        super().__init__(inner)
        self.prefills = []
        self.started = threading.Event()
        self.cached_after = []

    def stream(self, prompt, *args, **kwargs):
        yield from super().stream(prompt, *args, **kwargs)
        self.cached_after.append(self.inner.cached_tokens())

    def prefill(self, tokens, cancel):
        self.started.set()
        evaluated = self.inner.prefill(tokens, cancel)
        self.prefills.append((len(tokens), evaluated))
        return evaluated


def holds(narrator, prompt):
    """The cache starts with exactly this prompt's tokens."""
    return narrator.cached_tokens()[:len(prompt)] == list(prompt)


def test_the_prefill_is_what_the_next_turn_reuses(settings, real_narrator):
    game = open_game(settings, "reuse", real_narrator)
    game.submit("look around")
    game.prefill.wait()
    prefix = game.prefill.tokens
    assert game.prefill.evaluated > 0 and holds(real_narrator, prefix)
    reply = game.submit("walk to the well")
    prompt, sections = reply.plan.rendered.tokens, reply.plan.rendered.section_tokens
    evaluated = reply.trace.evaluated_tokens
    assert evaluated == len(prompt) - common_prefix(prefix, prompt)
    # after Enter, only this turn's own part is read (and the template's wrappers)
    assert 0 < evaluated <= sections.get("memories", 0) + sections["input"] + TEMPLATE_WRAPPERS
    assert reply.trace.reused_tokens == len(prompt) - evaluated > 300
    assert holds(real_narrator, prompt)
    game.close()


def test_submit_undo_and_retry_during_a_prefill_leave_no_stale_cache(settings, real_narrator):
    recorder = PrefillRecorder(real_narrator)
    game = open_game(settings, "cancel", recorder)
    game.submit("look around")
    assert recorder.started.wait(WAIT)
    reply = game.submit("walk to the well")  # the prefill is a batch or two in
    asked, evaluated = recorder.prefills[0]
    assert evaluated < asked  # cancelled, within a batch of starting
    prompt = reply.plan.rendered.tokens
    assert reply.turn.output and recorder.cached_after[-1][:len(prompt)] == prompt
    recorder.started.clear()
    game.submit("/undo")
    assert recorder.started.wait(WAIT)
    game.prefill.wait()  # how far a cancelled prefill got depends on the machine's load
    recorder.started.clear()
    reply = game.submit("/retry")
    assert recorder.started.wait(WAIT)
    # the retold turn was generated from its own prompt, most of it reused
    prompt = reply.plan.rendered.tokens
    assert reply.turn.number == 1 and reply.turn.input == "look around"
    assert recorder.cached_after[-1][:len(prompt)] == prompt
    assert 0 < reply.trace.evaluated_tokens < len(prompt) // 2
    game.prefill.wait()
    assert holds(real_narrator, game.prefill.tokens)  # and the prefill after it
    game.close()


def test_an_answer_told_not_to_copy_does_not(real_narrator):
    """Asked to say its last answer again, the model would copy it; told not to copy it,
    it shares no long run of words with it."""
    previous = ("The innkeeper wipes a mug and nods toward the stairs, where a lantern "
                "gutters above a door painted with a red hand.")
    messages = [Message.of("system", "You narrate a text adventure.", "system"),
                Message.of("user", "look around", "history"),
                Message.of("assistant", previous, "history"),
                Message.of("user", "Repeat your last answer exactly, word for word.", "input")]
    prompt = real_narrator.render(messages)
    options = SamplingOptions(max_tokens=40, seed=3, temperature=0.2)
    copied, _ = complete(real_narrator, prompt, options)
    told, _ = complete(real_narrator, prompt, options.model_copy(
        update={"avoid_copying": previous}))
    assert longest_shared_run(copied, previous) >= 8  # the model does copy
    assert longest_shared_run(told, previous) < 8 and told.strip()


def longest_shared_run(text, source):
    words, known = text.lower().split(), source.lower().split()
    runs = {tuple(known[i:i + n]) for n in range(1, len(known) + 1)
            for i in range(len(known) - n + 1)}
    return max((n for n in range(1, len(words) + 1)
                for i in range(len(words) - n + 1) if tuple(words[i:i + n]) in runs),
               default=0)
