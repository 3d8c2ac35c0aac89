"""All of a game's llama.cpp and torch math runs on the one compute thread, whichever
thread asks (the turn, the prefill, the memory writer, a summary): two threads' OpenMP
teams would slow every decode step (storyteller/compute.py)."""

import threading

from storyteller.config import Settings
from storyteller.engine.session import open_game
from storyteller.memory.embedder import shared_embedder
from storyteller.narrator.registry import load_extractor


def recording(function, threads: set[str]):
    def call(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return function(*args, **kwargs)
    return call


def test_the_narrator_and_the_embedder_compute_on_one_thread(settings, real_narrator,
                                                             monkeypatch):
    llm = real_narrator._llm
    evaluating, embedding = set(), set()
    monkeypatch.setattr(llm, "eval", recording(llm.eval, evaluating))
    model = shared_embedder()
    model.load()
    monkeypatch.setattr(model._model, "encode", recording(model._model.encode, embedding))
    game = open_game(settings, "one-thread", real_narrator)
    for action in ("look around", "walk to the well"):
        game.settle(game.submit(action))  # the turn, its memory writing, the prefill
    game.close()
    assert game.prefill.evaluated > 0  # the prefill ran, on a thread of its own
    assert len(evaluating) == 1 and evaluating == embedding
    assert next(iter(evaluating)) != threading.current_thread().name


def test_the_background_context_computes_beside_the_turn(real_narrator):
    """A summary's prompt is read in one llama.cpp call: on the compute thread it would
    hold the turn's next token for seconds."""
    background = load_extractor(Settings(n_ctx=2048), real_narrator)
    try:
        assert background is not real_narrator and not background.shared_compute
        assert real_narrator.shared_compute
    finally:
        background.close()
