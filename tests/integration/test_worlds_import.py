"""`storyteller worlds import FILE`: a lorebook or card becomes a world in the player's
worlds folder, listed and playable beside the shipped ones; a taken name needs --force,
a shipped one is never replaced, and a bad file is one line that writes nothing."""

import json

import pytest
from interop_support import SHARED, write_json
from support import run_cli

from storyteller import cli
from storyteller.config import Settings
from storyteller.storage.worlds import list_worlds, read_world_file

ELDORIA = SHARED / "Eldoria.json"


def storyteller(capsys, tmp_path, *args):
    """cli.main in this process, saves (and so worlds) under tmp_path: (code, out, err)."""
    code = cli.main([*args, "--saves-dir", str(tmp_path / "saves")])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_imported_world_is_written_beside_the_saves_listed_and_played(tmp_path):
    result = run_cli("worlds", "import", str(ELDORIA), "--name", "eldoria", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "worlds" / "eldoria.toml").is_file()
    assert "--world eldoria" in result.stdout
    listed = run_cli("worlds", cwd=tmp_path).stdout.splitlines()
    assert any(line.split()[0] == "eldoria" and line.endswith("imported") for line in listed)
    assert any(line.split()[0] == "emberfall" and line.endswith("shipped") for line in listed)
    script = tmp_path / "script.txt"
    script.write_text("I ask about the Shadowfangs.\n")
    played = run_cli("run", "--campaign", "woods", "--world", "eldoria", "--script",
                     str(script), "--backend", "scripted", "--extractor-model", "off",
                     cwd=tmp_path)
    assert played.returncode == 0, played.stderr
    meta = json.loads((tmp_path / "saves" / "woods" / "campaign.json").read_text())
    assert meta["world"] == "eldoria"
    assert (tmp_path / "saves" / "woods" / "world.toml").read_bytes() == \
        (tmp_path / "worlds" / "eldoria.toml").read_bytes()


def test_the_worlds_folder_can_be_set_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STORYTELLER_WORLDS_DIR", str(tmp_path / "elsewhere"))
    settings = Settings(saves_dir=tmp_path / "saves")
    assert settings.user_worlds_dir == tmp_path / "elsewhere"
    assert cli.main(["worlds", "import", str(ELDORIA), "--name", "eldoria"]) == 0
    assert (tmp_path / "elsewhere" / "eldoria.toml").is_file()
    assert not (tmp_path / "worlds").exists()
    imported = [world for world in list_worlds(settings) if world.imported]
    assert [(world.name, world.path.parent) for world in imported] == [
        ("eldoria", tmp_path / "elsewhere")]
    assert "Eldoria" in read_world_file(settings, "eldoria")


def test_an_existing_name_needs_force(tmp_path, capsys):
    imported = storyteller(capsys, tmp_path, "worlds", "import", str(ELDORIA), "--name", "woods")
    assert imported[0] == 0
    target = tmp_path / "worlds" / "woods.toml"
    first = target.read_bytes()
    other = write_json(tmp_path / "other.json", {"entries": {"0": {
        "key": ["bell"], "content": "The bell rings at dusk.", "comment": "Bell"}}})
    code, out, err = storyteller(capsys, tmp_path, "worlds", "import", str(other),
                                 "--name", "woods")
    assert code == 2 and "already in" in one_line(err) and "--force" in err
    assert target.read_bytes() == first
    assert storyteller(capsys, tmp_path, "worlds", "import", str(other), "--name", "woods",
                       "--force")[0] == 0
    assert "The bell rings at dusk." in target.read_text(encoding="utf-8")


def test_a_shipped_worlds_name_is_never_taken_even_with_force(tmp_path, capsys):
    code, out, err = storyteller(capsys, tmp_path, "worlds", "import", str(ELDORIA),
                                 "--name", "emberfall", "--force")
    assert code == 2 and "ships with storyteller" in one_line(err)
    assert not (tmp_path / "worlds").exists()


@pytest.mark.parametrize(("content", "problem"), [
    (b"[1, 2, 3]", "its JSON is not an object"),
    (b'{"entries": ', "neither a PNG file nor valid JSON"),
    (b'{"spec": "nothing we know"}', "is not a SillyTavern World Info file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
])
def test_a_malformed_file_is_one_line_naming_it_and_writes_nothing(tmp_path, capsys,
                                                                   content, problem):
    bad = tmp_path / "broken-lorebook.json"
    bad.write_bytes(content)
    code, out, err = storyteller(capsys, tmp_path, "worlds", "import", str(bad))
    line = one_line(err)
    assert code == 2 and line.startswith("storyteller: Cannot import ")
    assert f"{bad}: " in line
    assert problem in line
    assert not (tmp_path / "worlds").exists() and out == ""


def test_a_missing_file_is_one_line(tmp_path, capsys):
    code, out, err = storyteller(capsys, tmp_path, "worlds", "import", str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json" in one_line(err) and "cannot be read" in err
