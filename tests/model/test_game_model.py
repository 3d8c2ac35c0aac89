"""test_game with the real embedded model (moved from tests/integration/)."""


from storyteller.engine.session import open_game


def test_real_model_same_seed_same_story(settings):
    """From a fresh model, a seed fixes the story. (A warm KV cache evaluates the prompt
    in other batches, so its floating point, and then the sample, may differ.)"""
    outputs = []
    for name in ("one", "two"):
        game = open_game(settings.model_copy(update={"n_ctx": 1024}), name)
        outputs.append([game.submit(action).turn.output for action in ("look", "wait")])
        game.close()
    assert outputs[0] == outputs[1]
    assert all(outputs[0])
