"""The prefill with the real embedded model: what it evaluates while the player reads is
what the next turn reuses, and input during a prefill never leaves a stale cache."""

import threading

from support import RecordingNarrator, common_prefix

from storyteller.engine.session import open_game

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
    for line in ("/undo", "/retry"):
        recorder.started.clear()
        reply = game.submit(line)
        assert recorder.started.wait(WAIT)
    # the retold turn was generated from its own prompt, most of it reused
    prompt = reply.plan.rendered.tokens
    assert reply.turn.number == 1 and reply.turn.input == "look around"
    assert recorder.cached_after[-1][:len(prompt)] == prompt
    assert 0 < reply.trace.evaluated_tokens < len(prompt) // 2
    game.prefill.wait()
    assert holds(real_narrator, game.prefill.tokens)  # and the prefill after it
    game.close()
