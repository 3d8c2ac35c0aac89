"""The prefill with the real embedded model: what it evaluates while the player reads is
what the next turn reuses, and input during a prefill never leaves a stale cache. And
the sampling that keeps an answer from copying the previous one."""

import threading

from support import RecordingNarrator, common_prefix

from storyteller.context.summary import Summary
from storyteller.engine.session import open_game
from storyteller.generation import GenerationStats, Message, SamplingOptions, complete
from storyteller.narrator.llamacpp import PREFILL_BATCH

WAIT = 120  # seconds
TEMPLATE_WRAPPERS = 12  # ChatML around the last user message and the answer's start


class PrefillRecorder(RecordingNarrator):
    """Also keeps, for each prefill: (tokens asked for, tokens evaluated); and after each
    generation, the tokens the cache held. aside_batches: the next aside prefill stops
    after that many batches, as if the player had pressed Enter."""

    def __init__(self, inner):
        super().__init__(inner)
        self.prefills = []
        self.started = threading.Event()
        self.cached_after = []
        self.aside_batches = None

    def stream(self, prompt, *args, **kwargs):
        yield from super().stream(prompt, *args, **kwargs)
        self.cached_after.append(self.inner.cached_tokens())

    def prefill(self, tokens, cancel, aside=False):
        self.started.set()
        if aside and self.aside_batches is not None:
            cancel, self.aside_batches = CancelAfter(self.aside_batches), None
        evaluated = self.inner.prefill(tokens, cancel, aside)
        self.prefills.append((len(tokens), evaluated))
        return evaluated


class CancelAfter:
    """A cancel event that is set once `batches` prefill batches have run (the prefill
    asks twice a batch)."""

    def __init__(self, batches):
        self.asked, self.limit = 0, 2 * batches

    def is_set(self):
        self.asked += 1
        return self.asked > self.limit


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


def prompt_of(narrator, system, user):
    return narrator.render([Message.of("system", system, "system"),
                            Message.of("user", user, "input")]).tokens


def evaluated_by_a_turn(narrator, tokens):
    stats = GenerationStats()
    list(narrator.stream(type("Prompt", (), {"tokens": tokens})(), SamplingOptions(
        max_tokens=2, seed=1), threading.Event(), stats))
    return stats.evaluated_tokens


def test_an_aside_prefill_keeps_the_live_cache_and_goes_on_where_it_stopped(real_narrator):
    live = prompt_of(real_narrator, "You narrate a story. " * 20, "look around " * 20)
    new = prompt_of(real_narrator, "You narrate a tale. " * 20, "look around " * 20)
    assert evaluated_by_a_turn(real_narrator, live) > 0  # now in the live cache
    shared = common_prefix(live, new)
    assert real_narrator.prefill(new, CancelAfter(2), aside=True) == 2 * PREFILL_BATCH
    assert real_narrator.cached_tokens()[:len(live)] == live  # parked, not touched
    assert not real_narrator.end_aside(new)  # not all of it: the live cache is back
    assert evaluated_by_a_turn(real_narrator, live) <= 1  # only its logits re-made
    rest = real_narrator.prefill(new, threading.Event(), aside=True)
    assert rest == len(new) - shared - 2 * PREFILL_BATCH  # from where it stopped
    assert real_narrator.end_aside(new)  # the side copy is the live cache now
    assert real_narrator.cached_tokens()[:len(new)] == new
    assert evaluated_by_a_turn(real_narrator, new) <= 1


def test_a_turn_that_takes_the_new_layout_early_reuses_what_its_aside_prefill_read(
        real_narrator):
    live = prompt_of(real_narrator, "You narrate a story. " * 20, "look around " * 20)
    new = prompt_of(real_narrator, "You narrate a tale. " * 20, "look around " * 20)
    assert evaluated_by_a_turn(real_narrator, live) > 0
    shared = common_prefix(live, new)
    real_narrator.prefill(new, CancelAfter(2), aside=True)
    assert not real_narrator.end_aside(new)
    # the layout had to move before the aside was whole: the turn starts from the copy
    assert evaluated_by_a_turn(real_narrator, new) == len(new) - shared - 2 * PREFILL_BATCH
    assert evaluated_by_a_turn(real_narrator, live) > 2 * PREFILL_BATCH  # the old one is gone


def test_a_new_summary_waits_for_its_prefill_and_no_turn_pays_for_it(settings, real_narrator):
    """A summary lands; the prefill of the layout it makes is cut short by the next
    turn, which keeps the old layout and reads only its own part; the prefill after
    that turn finishes it, and the turn after uses the summary, reading only its part."""
    recorder = PrefillRecorder(real_narrator)
    game = open_game(settings, "aside", recorder)
    for action in ("look around", "walk to the well", "ask about the bells"):
        game.submit(action)
        game.prefill.wait()
    summary = Summary("You looked around the square and walked to the well.", 2)
    game.summarizer.summaries.record(summary)  # as the background summarizer does
    recorder.aside_batches = 2
    adopted = game.prefill.adopted  # new scenes' blocks so far
    game.submit("/help")  # any line is followed by a prefill
    game.prefill.wait()
    assert game.prefill.adopted == adopted and game.pipeline.layout_summary() != summary
    kept = game.submit("listen at the door")
    own_part = lambda reply: (reply.plan.rendered.section_tokens.get("memories", 0)  # noqa: E731
                              + reply.plan.rendered.section_tokens["input"] + TEMPLATE_WRAPPERS)
    assert summary.text not in kept.trace.prompt
    assert 0 < kept.trace.evaluated_tokens <= own_part(kept)
    game.prefill.wait()
    assert game.prefill.adopted == adopted + 1 and game.pipeline.layout_summary() == summary
    assert holds(real_narrator, game.prefill.tokens)
    switched = game.submit("open the door")
    assert summary.text in switched.trace.prompt
    assert 0 < switched.trace.evaluated_tokens <= own_part(switched)
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


def test_a_summary_that_lands_while_the_game_closes_starts_no_prefill(settings, real_narrator):
    """close() closes the memory the prefill would plan with (a closed database)."""
    game = open_game(settings, "closing", real_narrator)
    game.submit("look around")
    game.close()
    last = game.prefill._thread
    game.summarizer.on_summary()  # as a summary written during close() calls it
    assert game.prefill._thread is last
