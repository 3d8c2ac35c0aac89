"""All of a game's llama.cpp and torch math runs on the one compute thread, whichever
thread asks (the turn, the prefill, the memory writer, a summary): two threads' OpenMP
teams would slow every decode step (storyteller/compute.py)."""

import threading

from storyteller.engine.session import open_game
from storyteller.memory.embedder import shared_embedder


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
