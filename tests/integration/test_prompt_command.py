"""`storyteller prompt`: the next turn's prompt for each input, exactly as play would build
it, with nothing on disk changed (real embedder and Chroma; the embedded model's
tokenizer, or the scripted backend where play is compared)."""

import hashlib
import json
import shutil

from storyteller.cli import main
from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.schema import CAMPAIGN_FILE

ACTIONS = ["I ask the ferryman his name.", "I pay Quillon two coins.", "I cross the ford."]
REPLIES = ["He says he is Quillon, keeper of the ford.", "He bites a coin.",
           "The water is cold."]
QUESTIONS = ["What was the ferryman called?", "I look around."]
JSON_FIELDS = {"input", "prompt", "prompt_tokens", "evaluated_tokens", "sections",
               "retrieved"}


def played(settings, name):
    game = open_game(settings, name, ScriptedNarrator(REPLIES))
    for action in ACTIONS:
        game.settle(game.submit(action))
    game.submit("/remember Quillon never lies.")
    game.close()
    return settings.saves_dir / name


def every_file(folder):
    """Every file under the campaign folder, the memory index too, by content."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def prompt_cli(settings, name, *args):
    return main(["prompt", "--campaign", name, "--saves-dir", str(settings.saves_dir), *args])


def as_schema_1(folder):
    """campaign.json as an older storyteller wrote it: play would migrate it."""
    path = folder / CAMPAIGN_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    del meta["settings"]
    path.write_text(json.dumps({**meta, "schema_version": 1}), encoding="utf-8")


def test_prompt_changes_nothing_on_disk(settings, tmp_path, capsys):
    folder = played(settings, "ford")
    as_schema_1(folder)
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    before = every_file(folder)
    assert prompt_cli(settings, "ford", "--json", "--n-ctx", "1024", "--file",
                      str(questions)) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(QUESTIONS)
    assert every_file(folder) == before  # no migration, no memory or summary written


def test_prompt_json_has_the_trace_fields_and_what_a_cache_would_evaluate(settings, tmp_path,
                                                                          capsys):
    played(settings, "ford")
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    assert prompt_cli(settings, "ford", "--json", "--n-ctx", "1024", "--file",
                      str(questions)) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(first) == set(second) == JSON_FIELDS
    assert [first["input"], second["input"]] == QUESTIONS
    assert first["evaluated_tokens"] == first["prompt_tokens"]  # nothing before it
    assert 0 < second["evaluated_tokens"] < second["prompt_tokens"]  # the system prompt is shared
    assert sum(first["sections"].values()) == first["prompt_tokens"]
    assert first["prompt_tokens"] <= 1024 - settings.max_tokens
    assert "<|im_start|>" in first["prompt"]  # the model's own chat template
    assert "Quillon never lies." in first["prompt"]  # the pin
    assert {"id", "section", "via", "score"} <= set(first["retrieved"][0])


def test_the_prompt_shown_is_the_prompt_play_sends(settings, capsys, monkeypatch):
    played(settings, "ford")
    monkeypatch.setenv("STORYTELLER_BACKEND", "scripted")
    question = "What did Quillon say about the ford?"
    assert prompt_cli(settings, "ford", "--json", "--n-ctx", "2048", question) == 0
    shown = json.loads(capsys.readouterr().out)
    assert prompt_cli(settings, "ford", "--n-ctx", "2048", question) == 0
    readable = capsys.readouterr().out
    assert shown["prompt"] in readable and "input" in readable and "tokens" in readable
    game = open_game(settings, "ford", ScriptedNarrator(n_ctx=2048))
    try:
        reply = game.submit(question)
        assert reply.trace.prompt == shown["prompt"]
        assert reply.trace.retrieved == shown["retrieved"]
    finally:
        game.close()


def test_a_campaign_that_does_not_exist_is_one_line(settings, capsys):
    assert prompt_cli(settings, "nowhere", "hello") == 2
    error = capsys.readouterr().err.strip()
    assert "nowhere" in error and "\n" not in error


def test_an_index_that_does_not_match_the_story_is_refused_not_rebuilt(settings, capsys):
    folder = played(settings, "ford")
    shutil.rmtree(folder / "memory")
    before = every_file(folder)
    assert prompt_cli(settings, "ford", "hello") == 2
    error = capsys.readouterr().err.strip()
    assert "storyteller reindex --campaign ford" in error and "\n" not in error
    assert every_file(folder) == before and not (folder / "memory").exists()
