"""The load bench's pure parts: each game's marker, how cross-talk and latency are read
from a game's trace lines. No model, no server."""

import json

from bench.load import GAMES, foreign_markers, marker, read_run, script


def test_no_game_marker_contains_another():
    markers = [marker(game) for game in range(GAMES + 1)]
    assert all(a not in b for a in markers for b in markers if a is not b)


def test_every_action_names_its_own_game():
    assert all(marker(3) in action for action in script(3, 12))


def test_a_prompt_with_another_games_marker_is_cross_talk():
    games = [1, 2, 3]
    assert not foreign_markers(f"you whisper {marker(2)}", 2, games)
    assert foreign_markers(f"you whisper {marker(2)}; {marker(3)} echoes", 2, games)


def test_a_run_is_read_from_its_trace_lines(tmp_path):
    def line(prompt, **timings):
        stages = dict.fromkeys(("retrieve", "budget", "ttft", "generate", "save"), 0.0)
        return json.dumps({"prompt": prompt, "timings_ms": stages | timings})

    (tmp_path / "game1.jsonl").write_text("\n".join([
        line(marker(1), retrieve=10, budget=5, generate=1000, save=2, ttft=300),
        line(marker(1) + marker(2), generate=3000)]) + "\n", encoding="utf-8")
    run = read_run(tmp_path, 1, [1, 2], returncode=0)
    assert run.latencies_ms == [1017, 3000]  # ttft is inside generate: not counted twice
    assert run.foreign_prompts == 1
    assert run.recorded == 0  # no campaign was saved
