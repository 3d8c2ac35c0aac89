"""Many campaigns on one real `chroma run` server on 127.0.0.1: played at once (two saves
folders with a campaign of the same name included), none recalls another's memories; a
server that goes away mid-game costs no turn, and the index catches up when it is back."""

import threading

from storyteller.engine.session import open_game
from storyteller.memory.chroma_server import chroma_server, free_port
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign

# one word of its own per campaign, in every narration, so any recall of it elsewhere shows
WORDS = {("a", "quest"): "zebra", ("b", "quest"): "walrus", ("a", "other"): "pelican"}


def narrator_of(word):
    return ScriptedNarrator(replies=[f"A {word} watches you from the reeds, turn after turn."])


def test_campaigns_on_one_server_recall_only_their_own(settings, chroma_server, tmp_path):
    games = {}
    for (saves, name), word in WORDS.items():
        options = settings.model_copy(update={"saves_dir": tmp_path / saves,
                                              "memory_url": chroma_server})
        games[word] = open_game(options, name, narrator_of(word))
    start = threading.Barrier(len(games))

    def play(game):
        start.wait()
        for step in range(4):
            game.submit(f"wade in, step {step}")
        game.settle()

    threads = [threading.Thread(target=play, args=(game,)) for game in games.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len({game.memory.store.vectors.name for game in games.values()}) == len(games)
    for word, game in games.items():
        assert not game.memory.index_is_stale()  # every passage of its own, nothing else
        found = " ".join(entry.text for entry in game.memory.search("zebra walrus pelican"))
        assert word in found
        assert not [other for other in WORDS.values() if other != word and other in found]
        game.close()


def test_a_memory_server_gone_mid_game_loses_no_turn_and_is_caught_up(settings, tmp_path):
    data, log, port = tmp_path / "chroma-data", tmp_path / "chroma.log", free_port()
    settings.memory_url = f"http://127.0.0.1:{port}"
    with chroma_server(data, log, port):
        game = open_game(settings, "quest", narrator_of("heron"))
        game.submit("look")
        game.settle()
    reply = game.submit("listen")  # the server is gone
    assert reply.turn.number == 2
    [problem] = [n for n in reply.notices if "Memory search failed" in n]
    assert "\n" not in problem
    game.settle()  # the turn's passages could not be written: the next reply says so
    assert any(n.startswith("Memory: ") for n in game.submit("wait").notices)
    assert [t.input for t in Campaign.load(settings.saves_dir, "quest").turns] == [
        "look", "listen", "wait"]
    with chroma_server(data, log, port):
        game.submit("rest")
        game.settle()
        assert not game.memory.index_is_stale()  # turns 2 and 3 are in the index again
        assert {2, 3} <= {e.turn for e in game.memory.search("heron listen wait", 50)}
        game.close()
