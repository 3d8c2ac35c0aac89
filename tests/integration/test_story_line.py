"""A transcript that cannot fork: every record has an id and names the record it follows,
replay follows the one line of the last record, and a transcript forked before the lock
existed (two live turns with one number) loads deterministically, its other branch kept
as a checkpoint and the player told once."""

import json

from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign
from storyteller.storage.schema import CAMPAIGN_FILE
from storyteller.storage.transcript import TRANSCRIPT_FILE, Turn, read_transcript


def records(folder):
    return [json.loads(line) for line in (folder / TRANSCRIPT_FILE).read_text().splitlines()]


def played(turns):
    return [(t.number, t.input) for t in turns]


def test_every_record_follows_the_one_before_it(settings):
    game = open_game(settings, "quest", ScriptedNarrator())
    for line in ("look", "wait", "/undo", "listen", "/retry", "/edit sing"):
        game.submit(line)
    game.close()
    written = records(game.campaign.path)
    assert [r["type"] for r in written] == ["turn", "turn", "undo", "turn", "turn", "turn"]
    ids = [r["id"] for r in written]
    assert len(set(ids)) == len(ids)
    assert [r["after"] for r in written] == [None, *ids[:-1]]
    assert played(Campaign.load(settings.saves_dir, "quest").turns) == [(1, "look"), (2, "sing")]


def legacy_campaign(saves, turns):
    """A schema 2 campaign whose transcript records carry no ids, as before this version."""
    game = open_game(Settings_of(saves), "old", ScriptedNarrator())
    game.close()
    folder = game.campaign.path
    meta = json.loads((folder / CAMPAIGN_FILE).read_text())
    (folder / CAMPAIGN_FILE).write_text(json.dumps({**meta, "schema_version": 2}))
    lines = [json.dumps(record) for record in turns]
    (folder / TRANSCRIPT_FILE).write_text("\n".join(lines) + "\n")
    return folder


def Settings_of(saves):  # noqa: N802 - reads as the settings of a saves folder
    from storyteller.config import Settings

    return Settings(saves_dir=saves, extractor_model="off", max_tokens=20)


def turn(number, action, **extra):
    return {**Turn(number, action, f"{action}: told.").to_record(), **extra}


def test_an_old_transcript_without_ids_loads_as_it_was_played_and_plays_on(tmp_path):
    legacy = [turn(1, "look"), turn(2, "wait"), {"type": "undo", "turn": 2},
              turn(2, "listen"), turn(2, "hum", replaces=2), turn(3, "go")]
    folder = legacy_campaign(tmp_path, legacy)
    game = open_game(Settings_of(tmp_path), "old", ScriptedNarrator())
    assert game.campaign.notices == []  # no fork: nothing to tell
    game.submit("rest")
    game.close()
    assert json.loads((folder / CAMPAIGN_FILE).read_text())["schema_version"] == 3
    assert (folder / "campaign.json.v2.bak").exists()
    story = [(1, "look"), (2, "hum"), (3, "go"), (4, "rest")]
    assert played(Campaign.load(tmp_path, "old").turns) == story
    assert records(folder)[-1]["after"] == "legacy-5"  # the old records are never rewritten
    assert not (folder / "checkpoints").exists()


def test_a_forked_old_transcript_keeps_its_other_branch_as_a_checkpoint(tmp_path):
    """Two storytellers both wrote turn 3 (and one went on to turn 4) before the lock."""
    forked = [turn(1, "look"), turn(2, "wait"), turn(3, "left"), turn(3, "right"),
              turn(4, "onward")]
    folder = legacy_campaign(tmp_path, forked)
    game = open_game(Settings_of(tmp_path), "old", ScriptedNarrator())
    assert played(game.campaign.turns) == [(1, "look"), (2, "wait"), (3, "right"),
                                           (4, "onward")]
    [notice] = game.campaign.notices
    assert "two storytellers wrote turn 3 at once" in notice
    [checkpoint] = game.campaign.checkpoints()
    assert checkpoint.name.startswith("branch-turn-3-") and checkpoint.name in notice
    kept = read_transcript(folder / "checkpoints" / f"{checkpoint.name}.jsonl")
    assert played(kept) == [(1, "look"), (2, "wait"), (3, "left")]  # nothing dropped
    assert game.submit("look back").turn.number == 5
    game.close()
    again = open_game(Settings_of(tmp_path), "old", ScriptedNarrator())
    assert again.campaign.notices == [] and len(again.campaign.checkpoints()) == 1  # once
    assert played(again.campaign.turns)[-1] == (5, "look back")
    again.load_checkpoint(checkpoint.name)
    assert played(again.campaign.turns) == [(1, "look"), (2, "wait"), (3, "left")]
    again.close()


def test_two_writers_of_one_turn_number_load_as_the_line_of_the_last_record(tmp_path):
    """Two campaigns loaded side by side (as two processes did before the lock) both
    append a turn 3: the transcript forks, and the later line is the story."""
    game = open_game(Settings_of(tmp_path), "fork", ScriptedNarrator())
    game.submit("look")
    game.submit("wait")
    game.close()
    one, other = Campaign.load(tmp_path, "fork"), Campaign.load(tmp_path, "fork")
    one.append_turn(Turn(3, "north", "North."))
    other.append_turn(Turn(3, "south", "South."))
    one.append_turn(Turn(4, "on", "On."))
    loaded = Campaign.load(tmp_path, "fork")
    assert played(loaded.turns) == [(1, "look"), (2, "wait"), (3, "north"), (4, "on")]
    [branch] = loaded.branches
    assert (branch.forked_at, played(branch.turns)[-1]) == (3, (3, "south"))
    assert played(Campaign.load(tmp_path, "fork").turns) == played(loaded.turns)  # always
