import json

import pytest

from storyteller.errors import SaveError
from storyteller.storage.campaign import Campaign
from storyteller.storage.listing import delete_campaign, list_campaigns
from storyteller.storage.names import campaign_path, validate_name
from storyteller.storage.schema import CAMPAIGN_FILE
from storyteller.storage.transcript import TRANSCRIPT_FILE, Turn

WORLD = 'title = "T"\nsetting = "S"\n'


def new_campaign(saves, name="quest"):
    return Campaign.create(saves, name, "emberfall", WORLD, "embedded")


def test_turns_survive_reload(tmp_path):
    campaign = new_campaign(tmp_path)
    campaign.append_turn(Turn(1, "look", "You see a door."))
    campaign.append_turn(Turn(2, "open door", "It creaks."))
    loaded = Campaign.load(tmp_path, "quest")
    assert [(t.number, t.input, t.output) for t in loaded.turns] == [
        (1, "look", "You see a door."), (2, "open door", "It creaks.")]
    assert loaded.next_turn_number == 3
    assert json.loads((tmp_path / "quest" / CAMPAIGN_FILE).read_text())["turns"] == 2


def test_undo_is_recorded_and_replayed(tmp_path):
    campaign = new_campaign(tmp_path)
    campaign.append_turn(Turn(1, "a", "A."))
    campaign.append_turn(Turn(2, "b", "B."))
    assert campaign.undo().number == 2
    campaign.append_turn(Turn(2, "c", "C."))
    loaded = Campaign.load(tmp_path, "quest")
    assert [t.input for t in loaded.turns] == ["a", "c"]
    assert new_campaign(tmp_path, "empty").undo() is None


def test_torn_last_line_is_ignored_and_cut_before_next_write(tmp_path):
    campaign = new_campaign(tmp_path)
    campaign.append_turn(Turn(1, "a", "A."))
    transcript = tmp_path / "quest" / TRANSCRIPT_FILE
    with open(transcript, "a") as file:
        file.write('{"type": "turn", "number": 2, "inp')  # a crash mid-write
    loaded = Campaign.load(tmp_path, "quest")
    assert [t.number for t in loaded.turns] == [1]
    loaded.append_turn(Turn(2, "b", "B."))
    assert [t.input for t in Campaign.load(tmp_path, "quest").turns] == ["a", "b"]


def test_corrupt_middle_line_names_the_file_and_changes_nothing(tmp_path):
    campaign = new_campaign(tmp_path)
    campaign.append_turn(Turn(1, "a", "A."))
    transcript = tmp_path / "quest" / TRANSCRIPT_FILE
    transcript.write_text("garbage\n" + transcript.read_text())
    before = transcript.read_bytes()
    with pytest.raises(SaveError, match="transcript.jsonl line 1"):
        Campaign.load(tmp_path, "quest")
    assert transcript.read_bytes() == before


def test_corrupt_campaign_json_is_a_clear_error_and_left_untouched(tmp_path):
    new_campaign(tmp_path)
    meta = tmp_path / "quest" / CAMPAIGN_FILE
    meta.write_text("{not json")
    with pytest.raises(SaveError, match="corrupt.*untouched"):
        Campaign.load(tmp_path, "quest")
    assert meta.read_text() == "{not json"


@pytest.mark.parametrize("name", ["../x", "../../x", "/etc/passwd", "a/b", "a\\b", "..", ".",
                                  ".hidden", "nul\x00byte", "", "   ", "CON", "com1.txt",
                                  "x" * 65, "trailing."])
def test_names_that_could_escape_saves_are_refused(tmp_path, name):
    with pytest.raises(SaveError, match="Invalid campaign name"):
        campaign_path(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["my-quest", "Die Reise", "冒険", "émilie_2", "v1.2"])
def test_ordinary_and_unicode_names_work(tmp_path, name):
    campaign = new_campaign(tmp_path, name)
    campaign.append_turn(Turn(1, "a", "A."))
    assert campaign.path.parent == tmp_path.resolve()
    assert Campaign.load(tmp_path, validate_name(name)).turns[0].input == "a"


def test_missing_campaign(tmp_path):
    with pytest.raises(SaveError, match="No campaign named 'ghost'"):
        Campaign.load(tmp_path, "ghost")


def test_unwritable_saves_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "saves"
    blocker.write_text("a file where the saves folder should be")
    with pytest.raises(SaveError, match="Cannot create campaign.*writable"):
        new_campaign(blocker)
    assert blocker.read_text().startswith("a file")


def test_campaigns_are_listed_newest_first_with_a_corrupt_one_kept(tmp_path):
    older = Campaign.create(tmp_path, "older", "lanternsea", WORLD, "embedded")
    meta_path = older.path / CAMPAIGN_FILE
    meta_path.write_text(meta_path.read_text().replace(older.meta["updated"],
                                                       "2026-01-01T00:00:00+00:00"))
    newer = Campaign.create(tmp_path, "newer", "emberfall", WORLD, "embedded")
    newer.append_turn(Turn(1, "look", "A forge."))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / CAMPAIGN_FILE).write_text("[1, 2")
    (tmp_path / "not-a-campaign").mkdir()
    found = list_campaigns(tmp_path)
    assert [(c.name, c.world, c.turns) for c in found[:2]] == [("newer", "emberfall", 1),
                                                             ("older", "lanternsea", 0)]
    assert found[2].name == "broken" and found[2].problem
    assert len(found) == 3
    assert list_campaigns(tmp_path / "missing") == []


def test_delete_removes_only_campaign_folders(tmp_path):
    Campaign.create(tmp_path, "doomed", "emberfall", WORLD, "embedded")
    (tmp_path / "other").mkdir()
    delete_campaign(tmp_path, "doomed")
    assert not (tmp_path / "doomed").exists()
    with pytest.raises(SaveError, match="No campaign named 'other'"):
        delete_campaign(tmp_path, "other")
    with pytest.raises(SaveError, match="Invalid campaign name"):
        delete_campaign(tmp_path, "..")
    assert (tmp_path / "other").exists()
