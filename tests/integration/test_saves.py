"""The save format: schema validation and migration, checkpoints, exports, the content
log, campaign management, and writes that fail (full or read-only disk)."""

import errno
import json
from pathlib import Path

import pytest

from storyteller import cli
from storyteller.context.summary import Summary
from storyteller.engine.session import open_game
from storyteller.errors import SaveError
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign
from storyteller.storage.durable import read_jsonl
from storyteller.storage.interop.sillytavern import read_chat
from storyteller.storage.listing import delete_campaign, list_campaigns
from storyteller.storage.schema import CAMPAIGN_FILE, SCHEMA_VERSION
from storyteller.storage.transcript import TRANSCRIPT_FILE, Turn, read_transcript

WORLD = 'title = "T"\nsetting = "S"\nopening = "It begins."\n'
# campaign.json exactly as the foundation (schema 1) and a pre-release build (0) wrote it
V1_META = ('{\n  "schema_version": 1,\n  "name": "old",\n  "world": "emberfall",\n'
           '  "model": "embedded",\n  "created": "2026-11-01T10:00:00+00:00",\n'
           '  "updated": "2026-11-02T10:00:00+00:00",\n  "turns": 2\n}')
V0_META = '{"name": "old", "world": "emberfall", "model": "embedded", ' \
          '"created": "2026-10-01T10:00:00+00:00"}'


def old_campaign(saves, meta_text):
    folder = saves / "old"
    folder.mkdir(parents=True)
    (folder / CAMPAIGN_FILE).write_text(meta_text)
    (folder / "world.toml").write_text(WORLD)
    records = [Turn(1, "look", "A hall.").to_record(), Turn(2, "wait", "Time.").to_record()]
    (folder / TRANSCRIPT_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def played(campaign):
    return [(t.number, t.input, t.output) for t in campaign.turns]


# -- schema and migration ---------------------------------------------------------

@pytest.mark.parametrize(("version", "meta_text"), [(1, V1_META), (0, V0_META)])
def test_an_older_schema_is_migrated_after_a_backup(tmp_path, version, meta_text):
    folder = old_campaign(tmp_path, meta_text)
    campaign = Campaign.load(tmp_path, "old")
    assert played(campaign) == [(1, "look", "A hall."), (2, "wait", "Time.")]
    assert (folder / f"campaign.json.v{version}.bak").read_text() == meta_text
    meta = json.loads((folder / CAMPAIGN_FILE).read_text())
    assert meta["schema_version"] == SCHEMA_VERSION == 3
    assert meta["settings"] == {key: None for key in meta["settings"]}
    assert meta["turns"] == 2 and meta["created"] == json.loads(meta_text)["created"]
    # version 0 had no `updated`: it starts at `created`; version 1 keeps its own
    assert meta["updated"] == json.loads(meta_text).get("updated", meta["created"])
    assert meta["updated"] == ("2026-10-01T10:00:00+00:00" if version == 0
                               else "2026-11-02T10:00:00+00:00")
    Campaign.load(tmp_path, "old").append_turn(Turn(3, "go", "Gone."))  # plays on
    assert len(list(folder.glob("*.bak"))) == 1  # migrated once


def test_a_migration_that_cannot_write_leaves_the_file_untouched(tmp_path, disk_failure):
    folder = old_campaign(tmp_path, V1_META)
    with disk_failure(folder, errno.EROFS), pytest.raises(SaveError) as caught:
        Campaign.load(tmp_path, "old")
    assert "Cannot migrate" in str(caught.value) and "Read-only" in str(caught.value)
    assert "left untouched" in str(caught.value) and "\n" not in str(caught.value)
    assert (folder / CAMPAIGN_FILE).read_text() == V1_META
    assert not list(folder.glob("*.bak"))


@pytest.mark.parametrize(("meta", "expected"), [
    ({"schema_version": 1, "name": "old", "world": "w", "model": "m", "created": "c",
      "updated": "u", "turns": "two"}, "schema 1, turns"),
    ({"schema_version": 2, "name": "old", "world": "w", "model": "m", "created": "c",
      "updated": "u", "turns": 1, "settings": {"content_log_level": 9}}, "content_log_level"),
    ({"name": "old", "world": 3, "model": "m", "created": "c"}, "schema 0, world"),
    ({"schema_version": "2", "name": "old"}, "invalid schema_version"),
    ({"schema_version": 99, "name": "old"}, "newer storyteller"),
    (["not", "an", "object"], "not a campaign file"),
])
def test_an_invalid_campaign_file_is_named_and_never_rewritten(tmp_path, meta, expected,
                                                               files_of):
    folder = old_campaign(tmp_path, json.dumps(meta))
    before = files_of(folder)
    with pytest.raises(SaveError, match=expected) as caught:
        Campaign.load(tmp_path, "old")
    assert str(folder / CAMPAIGN_FILE) in str(caught.value)
    assert files_of(folder) == before


@pytest.mark.parametrize("garbage", [b"{not json", b"\xff\xfe{}", b"", b"\x00" * 20])
def test_a_corrupt_campaign_file_is_a_clear_error_and_untouched(tmp_path, garbage, files_of):
    folder = old_campaign(tmp_path, V1_META)
    (folder / CAMPAIGN_FILE).write_bytes(garbage)
    before = files_of(folder)
    with pytest.raises(SaveError, match="campaign.json is corrupt.*left untouched"):
        Campaign.load(tmp_path, "old")
    assert files_of(folder) == before


def test_invalid_utf8_in_the_transcript_names_the_line_and_changes_nothing(tmp_path,
                                                                          files_of):
    folder = old_campaign(tmp_path, V1_META)
    with open(folder / TRANSCRIPT_FILE, "ab") as file:
        file.write(b'{"type": "turn", "number": 3, "input": "\xff", "output": "x"}\n')
    before = files_of(folder)
    with pytest.raises(SaveError, match="transcript.jsonl line 3 is unreadable"):
        Campaign.load(tmp_path, "old")
    assert files_of(folder) == before


# -- checkpoints ----------------------------------------------------------------------

def test_save_and_load_checkpoints_branch_the_story_and_keep_everything(settings):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    assert game.submit("/save crossroads").saved_checkpoint == "crossroads"
    game.submit("go left")
    game.submit("open the chest")
    left = played(game.campaign)
    reply = game.submit("/load crossroads")
    assert reply.loaded_checkpoint == "crossroads"
    assert played(game.campaign) == played(Campaign.load(settings.saves_dir, "quest"))
    assert [t.input for t in game.campaign.turns] == ["look"]
    game.submit("go right")  # the other branch
    assert reply.saved_checkpoint in game.submit("/load").message  # the list
    game.submit(f"/load {reply.saved_checkpoint}")  # back to the left branch
    assert played(game.campaign) == left == played(Campaign.load(settings.saves_dir, "quest"))
    assert "exists already" in game.submit("/save crossroads").message


@pytest.mark.parametrize("name", ["../x", "../../etc/passwd", "/abs", "a/b", "a\\b", "..",
                                  ".hidden", "nul\x00byte", "CON", "lpt1.txt", "x" * 65,
                                  "trailing."])
def test_checkpoint_names_never_escape_the_campaign(settings, name, files_of):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    before = files_of(settings.saves_dir.parent)
    with pytest.raises(SaveError, match="Invalid checkpoint name"):
        game.campaign.save_checkpoint(name)
    with pytest.raises(SaveError, match="Invalid checkpoint name"):
        game.campaign.load_checkpoint(name)
    if "\x00" not in name:  # typed input loses its control characters before this point
        for command in ("/save", "/load"):
            reply = game.submit(f"{command} {name}")
            assert reply.message.startswith("Invalid checkpoint name")
            assert "\n" not in reply.message
    assert files_of(settings.saves_dir.parent) == before


def test_unicode_checkpoint_names_work(settings):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    assert game.submit("/save Ärger 冒険").saved_checkpoint == "Ärger 冒険"
    game.submit("wait")
    assert game.submit("/load Ärger 冒険").loaded_checkpoint == "Ärger 冒険"
    assert len(game.campaign.turns) == 1


def test_a_broken_checkpoint_is_refused_and_the_story_is_unchanged(settings, files_of):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    game.submit("/save good")
    checkpoint = game.campaign.checkpoint_path("good")
    checkpoint.write_bytes(b"\xff\xfe garbage\n")
    before = files_of(game.campaign.path)
    message = game.submit("/load good").message
    assert "good.jsonl line 1 is unreadable" in message
    assert files_of(game.campaign.path) == before and len(game.campaign.turns) == 1


def test_a_retry_is_one_record_so_a_crash_keeps_a_telling(tmp_path):
    campaign = Campaign.create(tmp_path, "quest", "w", WORLD, "m")
    campaign.append_turn(Turn(1, "look", "First telling."))
    campaign.replace_last_turn(Turn(1, "look", "Second telling."))
    lines = (campaign.path / TRANSCRIPT_FILE).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["replaces"] == 1
    assert played(Campaign.load(tmp_path, "quest")) == [(1, "look", "Second telling.")]
    # killed before the retry's record was complete: the first telling is still there
    (campaign.path / TRANSCRIPT_FILE).write_text(lines[0] + "\n" + lines[1][:30])
    assert played(Campaign.load(tmp_path, "quest")) == [(1, "look", "First telling.")]


# -- a full or read-only disk ---------------------------------------------------------

@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS])
def test_a_failing_disk_loses_nothing_and_says_so_in_one_line(settings, error, disk_failure,
                                                             files_of):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    game.submit("/save before")
    folder = game.campaign.path
    before = files_of(folder)
    with disk_failure(settings.saves_dir, error):
        with pytest.raises(SaveError) as caught:
            game.submit("open the door")
        message = str(caught.value)
        assert os_message(error) in message and "not saved" in message and "\n" not in message
        assert game.campaign.save_state.describe().startswith("NOT SAVED")
        for command in ("/save later", "/load before", "/export"):
            answer = game.submit(command)
            assert os_message(error) in answer.message and "\n" not in answer.message
        with pytest.raises(SaveError):
            game.submit("/undo")
    assert files_of(folder) == before
    assert played(game.campaign) == played(Campaign.load(settings.saves_dir, "quest"))
    reply = game.submit("open the door")  # the disk is back: play goes on
    assert reply.turn.number == 2 and reply.autosave.describe() == "saved"
    assert reply.trace.autosave["ok"] and reply.trace.autosave["turns"] == 2


def os_message(error):
    import os

    return os.strerror(error)


def test_campaign_json_failing_alone_is_reported_but_the_turn_is_saved(settings,
                                                                       monkeypatch):
    game = open_game(settings, "quest", ScriptedNarrator())

    def refuse(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(game.campaign, "_write_meta", refuse)
    reply = game.submit("look")
    assert reply.autosave.ok and "campaign.json not updated" in reply.autosave.describe()
    assert any("campaign.json not updated" in notice for notice in reply.notices)
    assert played(Campaign.load(settings.saves_dir, "quest")) == played(game.campaign)


# -- exports, the content log, settings kept with the campaign -----------------------

def test_export_writes_a_readable_story_and_json(settings):
    narrator = ScriptedNarrator(replies=["The door \x1b[31mopens\x1b[0m.\x07", "Rain falls."])
    game = open_game(settings, "quest", narrator)
    game.submit("open the door")
    game.submit("listen")
    message = game.submit("/export").message
    # Sorted by suffix: the two names carry their own times, which may differ by a second.
    exports = sorted((game.campaign.path / "exports").iterdir(), key=lambda p: p.suffix)
    assert [path.suffix for path in exports] == [".json", ".md"]
    assert all(str(path) in message for path in exports)
    story = exports[1].read_text()
    assert story.startswith("# The Embers of Emberfall\n")
    assert "> **1.** open the door\n\nThe door opens.\n" in story
    assert "> **2.** listen\n\nRain falls." in story and "\x1b" not in story
    data = json.loads(exports[0].read_text())
    assert data["format"] == "storyteller-story" and data["campaign"]["name"] == "quest"
    assert [t["input"] for t in data["turns"]] == ["open the door", "listen"]
    assert data["world"]["title"] == "The Embers of Emberfall"
    game.submit("/export md")
    assert len(list((game.campaign.path / "exports").glob("*.md"))) == 2  # never overwritten
    assert "not a format" in game.submit("/export pdf").message


def test_a_sillytavern_export_of_a_played_campaign_reads_back_to_the_same_turns(settings,
                                                                               capsys):
    replies = ["The door opens on a hall of ash.", "«Wer da?» calls a voice.",
               "Rain falls on the anvil.", "The smith nods, once."]
    game = open_game(settings, "quest", ScriptedNarrator(replies=replies))
    for line in ("open the door", "call out", "/retry", "listen", "/undo", "wait by the forge"):
        game.submit(line)
    game.close()
    assert cli.main(["export", "--campaign", "quest", "--format", "sillytavern",
                     "--saves-dir", str(settings.saves_dir)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == settings.saves_dir / "quest" / "exports"
    assert path.name.endswith(".sillytavern.jsonl")
    header, *messages = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(header) == {"user_name", "character_name", "create_date", "chat_metadata"}
    assert header["chat_metadata"] == {} and header["character_name"] == game.world.title
    assert all(set(m) == {"name", "is_user", "is_system", "send_date", "mes", "extra"}
               and m["is_system"] is False and m["extra"] == {} for m in messages)
    campaign = Campaign.load(settings.saves_dir, "quest")
    chat = read_chat(path)
    assert chat.turns == [(turn.input, turn.output) for turn in campaign.turns]
    assert [turn for turn, _ in chat.turns] == ["open the door", "call out", "wait by the forge"]
    assert chat.opening == game.world.opening
    assert (chat.user_name, chat.character_name) == ("You", game.world.title)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_content_log_levels(settings, level):
    settings.content_log_level = level
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    game.submit("/undo")
    records = read_jsonl(game.campaign.content_log_path)
    events = [r["event"] for r in records]
    expected = {0: [], 1: ["turn"], 2: ["turn", "stage", "stage", "stage", "command"],
                3: ["turn", "stage", "stage", "stage", "trace", "command"]}[level]
    assert events == expected
    if level == 3:
        trace = records[4]
        assert trace["prompt"].count("look") >= 1 and trace["output"] == records[0][
            "output_start"]
    exported = game.submit("/export log").message.split("Exported: ")[1]
    lines = Path(exported).read_text().splitlines()
    assert [json.loads(line) for line in lines] == records


def test_settings_are_kept_with_the_campaign(settings):
    settings.content_log_level = 2
    settings.temperature = 0.3
    first = open_game(settings, "quest", ScriptedNarrator())
    first.submit("look")
    first.close()
    from storyteller.config import Settings

    plain = Settings(saves_dir=settings.saves_dir)
    game = open_game(plain, "quest", ScriptedNarrator())
    assert game.settings.content_log_level == 2 and game.settings.temperature == 0.3
    game.close()
    louder = Settings(saves_dir=settings.saves_dir, content_log_level=3)
    assert open_game(louder, "quest", ScriptedNarrator()).settings.content_log_level == 3
    stored = json.loads((game.campaign.path / CAMPAIGN_FILE).read_text())["settings"]
    assert stored["content_log_level"] == 3 and stored["temperature"] == 0.3


# -- campaign management ---------------------------------------------------------------

def test_list_and_delete_campaigns(tmp_path, files_of):
    one = Campaign.create(tmp_path, "one", "emberfall", WORLD, "m")
    one.append_turn(Turn(1, "a", "A."))
    Campaign.create(tmp_path, "two", "lanternsea", WORLD, "m")
    broken = Campaign.create(tmp_path, "broken", "w", WORLD, "m")
    (broken.path / CAMPAIGN_FILE).write_text("{")
    (tmp_path / "not-a-campaign").mkdir()
    found = {info.name: info for info in list_campaigns(tmp_path)}
    assert set(found) == {"one", "two", "broken"}
    assert (found["one"].world, found["one"].turns) == ("emberfall", 1)
    assert found["one"].size_bytes > 0 and found["one"].last_played
    assert "corrupt" in found["broken"].problem
    for name in ("../one", "/tmp", "not-a-campaign", "ghost"):
        with pytest.raises(SaveError):
            delete_campaign(tmp_path, name)
    delete_campaign(tmp_path, "one")
    assert not one.path.exists() and (tmp_path / "two").exists()


def test_torn_checkpoint_temp_files_are_not_checkpoints(settings):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    game.submit("/save a")
    folder = game.campaign.path / "checkpoints"
    (folder / ".b.jsonl.x1y2.tmp").write_text('{"type": "tu')  # killed mid /save b
    assert [c.name for c in game.campaign.checkpoints()] == ["a"]
    assert read_transcript(folder / "a.jsonl") == game.campaign.turns


def test_a_bad_saved_setting_is_named_and_unknown_ones_are_kept(settings, files_of):
    game = open_game(settings, "quest", ScriptedNarrator())
    meta_path = game.campaign.path / CAMPAIGN_FILE
    meta = json.loads(meta_path.read_text())
    meta["settings"] |= {"temperature": 9.0}
    meta_path.write_text(json.dumps(meta))
    game.close()
    from storyteller.config import Settings

    plain = Settings(saves_dir=settings.saves_dir)
    with pytest.raises(SaveError, match=r"campaign.json is not a valid campaign file "
                                        r"\(schema 3, settings.temperature: "):
        open_game(plain, "quest", ScriptedNarrator())
    meta["settings"] |= {"temperature": 0.5, "theme": "dark"}  # from a later storyteller
    meta_path.write_text(json.dumps(meta))
    game = open_game(Settings(saves_dir=settings.saves_dir, content_log_level=1), "quest",
                     ScriptedNarrator())
    game.submit("look")
    stored = json.loads(meta_path.read_text())["settings"]
    assert stored["content_log_level"] == 1  # rewritten...
    assert stored["theme"] == "dark" and stored["temperature"] == 0.5  # ...keeping these
    assert game.settings.temperature == 0.5


def test_loading_a_checkpoint_drops_summaries_of_turns_it_does_not_share(settings):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")
    game.submit("/save early")
    game.submit("wait")
    game.submit("listen")
    game.summarizer.summaries.record(Summary("You looked.", 1))
    game.summarizer.summaries.record(Summary("You looked, waited, listened.", 3))
    game.submit("/load early")
    assert game.summarizer.summaries.current == Summary("You looked.", 1)
    assert game.pipeline.layout_summary() == Summary("You looked.", 1)  # what prompts hold


def test_a_derived_file_failing_is_one_clear_line_too(settings, monkeypatch):
    game = open_game(settings, "quest", ScriptedNarrator())
    game.submit("look")

    def refuse(path, record):
        raise OSError(errno.ENOSPC, "No space left on device", "summaries.jsonl")

    monkeypatch.setattr("storyteller.context.summary.append_jsonl", refuse)
    game.summarizer.summaries.history.append(Summary("You looked.", 1))
    with pytest.raises(SaveError, match="Cannot write summaries.jsonl: No space left"):
        game.submit("/undo")
    assert Campaign.load(settings.saves_dir, "quest").turns == game.campaign.turns == []
