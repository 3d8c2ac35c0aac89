"""Hostile input and hostile disks, through the real command line (`storyteller run` and
the campaign commands) in subprocesses. The scripted narrator stands in for the model
(the test-only STORYTELLER_TEST_SCRIPTED_NARRATOR): what is tested is what gets saved."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.storage.campaign import Campaign

REPO = Path(__file__).resolve().parents[2]
SCRIPTED = {"STORYTELLER_BACKEND": "scripted"}  # the scripted backend, by its name


def storyteller(*args, cwd, stdin=None, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **SCRIPTED, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "storyteller", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def play(tmp_path, lines, campaign="c", extra=()):
    script = tmp_path / "script.txt"
    script.write_bytes(lines if isinstance(lines, bytes) else "\n".join(lines).encode())
    return storyteller("run", "--campaign", campaign, "--script", str(script), *extra,
                       cwd=tmp_path)


def turns(tmp_path, campaign="c"):
    return [(t.number, t.input, t.output)
            for t in Campaign.load(tmp_path / "saves", campaign).turns]


def one_line(stream: str) -> str:
    lines = stream.strip().splitlines()
    assert len(lines) == 1, stream
    return lines[0]


def test_a_100k_character_action_is_cut_with_one_notice_and_nothing_lost(tmp_path):
    assert play(tmp_path, ["look"]).returncode == 0
    huge = "climb " * 16_667  # 100,002 characters
    result = play(tmp_path, [huge, "wait"])
    assert result.returncode == 0, result.stderr
    assert "only the first" in one_line(result.stderr) and "100,00" in result.stderr
    played = turns(tmp_path)
    assert [t[0] for t in played] == [1, 2, 3]
    assert played[0][1] == "look" and played[2][1] == "wait"
    assert 0 < len(played[1][1]) <= 2000 and huge.startswith(played[1][1])


def test_escapes_control_characters_and_invalid_utf8_in_a_script(tmp_path):
    lines = (b"\x1b[2J\x1b[31mopen\x1b[0m the\x00 door\x07\r\n"
             b"\x1b]0;evil title\x07look \xff\xfe around\n"
             b"\x00\x01\x02\n"  # nothing left once cleaned
             b"\xe2\x80\xae reversed \xf0\x9f\x90\x89\n")
    result = play(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    inputs = [t[1] for t in turns(tmp_path)]
    assert inputs[0] == "open the door"
    assert inputs[1].startswith("look") and inputs[1].endswith("around")
    assert "\ufffd" in inputs[1]  # undecodable bytes are shown as such, never dropped silently
    assert inputs[2].endswith("reversed 🐉")
    assert all(ch.isprintable() or ch == "\u202e" for text in inputs for ch in text)
    assert "Type an action" in result.stderr  # the line that was only control characters
    assert "\x1b" not in result.stdout + result.stderr


def test_commands_with_wrong_arguments_get_one_line_each_and_change_nothing(tmp_path):
    assert play(tmp_path, ["look"]).returncode == 0
    before = turns(tmp_path)
    bad = ["/undo 3", "/retry now", "/quit please", "/dance", "/save ../../escape",
           "/load ../campaign", "/load missing", "/export pdf", "/save", "/SAVE x/y",
           "/" + "x" * 5000, "/help me"]
    result = play(tmp_path, bad)
    assert result.returncode == 0, result.stderr
    answers = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(answers) == len(bad), answers
    assert all(len(answer) < 300 for answer in answers)
    assert turns(tmp_path) == before
    assert not (tmp_path / "escape").exists() and not (tmp_path / "saves" / "escape").exists()


def test_invalid_utf8_world_and_save_files_are_one_clear_line(tmp_path, files_of):
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    (prompts / "worlds" / "broken.toml").write_bytes(b'title = "\xff"\nsetting = "x"\n')
    (tmp_path / "one.txt").write_text("look\n")
    result = storyteller("run", "--campaign", "c", "--script", "one.txt", "--world", "broken",
                         cwd=tmp_path, env_extra={"STORYTELLER_PROMPTS_DIR": str(prompts)})
    assert result.returncode == 2
    assert "broken.toml is not valid UTF-8" in one_line(result.stderr)

    assert play(tmp_path, ["look"]).returncode == 0
    folder = tmp_path / "saves" / "c"
    for name, garbage in (("world.toml", b'title = "\xc3"\n'),
                          ("campaign.json", b"\xff\xfe"),
                          ("transcript.jsonl", b'{"type": "turn", "input": "\xff"}\n')):
        original = (folder / name).read_bytes()
        (folder / name).write_bytes(garbage)
        before = files_of(folder)
        result = play(tmp_path, ["look"])
        assert result.returncode == 2 and name in one_line(result.stderr)
        assert files_of(folder) == before
        (folder / name).write_bytes(original)
    assert [t[1] for t in turns(tmp_path)] == ["look"]


# -- campaign management on the command line --------------------------------------------

def test_campaigns_delete_and_export_commands(tmp_path):
    assert "No campaigns" in storyteller("campaigns", cwd=tmp_path).stdout
    assert play(tmp_path, ["look", "wait"], campaign="first").returncode == 0
    assert play(tmp_path, ["look"], campaign="Zweite Reise", extra=("--world", "lanternsea")
                ).returncode == 0
    table = storyteller("campaigns", cwd=tmp_path).stdout.splitlines()
    assert table[0].split() == ["NAME", "WORLD", "TURNS", "LAST", "PLAYED", "SIZE"]
    assert table[1].split()[:3] == ["Zweite", "Reise", "lanternsea"]
    assert table[2].split()[:3] == ["first", "emberfall", "2"] and "KB" in table[2]

    for fmt in ("md", "json"):
        result = storyteller("export", "--campaign", "first", "--format", fmt, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        path = Path(result.stdout.strip())
        assert path.parent == (tmp_path / "saves" / "first" / "exports").resolve()
        text = path.read_text()
        assert "wait" in text and (fmt != "json" or json.loads(text)["turns"][1]["number"] == 2)
    missing = storyteller("export", "--campaign", "ghost", cwd=tmp_path)
    assert missing.returncode == 2 and "No campaign named 'ghost'" in one_line(missing.stderr)

    refused = storyteller("delete", "first", cwd=tmp_path, stdin="no\n")
    assert refused.returncode == 1 and "2 turns" in refused.stdout
    assert (tmp_path / "saves" / "first").exists()
    for name in ("../first", "/etc", "..", "ghost"):
        result = storyteller("delete", name, "--yes", cwd=tmp_path)
        assert result.returncode == 2 and one_line(result.stderr).startswith("storyteller: ")
    assert storyteller("delete", "first", cwd=tmp_path, stdin="yes\n").returncode == 0
    assert not (tmp_path / "saves" / "first").exists()
    assert storyteller("delete", "Zweite Reise", "--yes", cwd=tmp_path).returncode == 0
    assert list((tmp_path / "saves").iterdir()) == []


# -- real read-only and full file systems (a private mount namespace, as root) -------------

def _private_mounts_work() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            "mount -t tmpfs -o size=4k tmpfs /mnt && umount /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _private_mounts_work(),
                                  reason="needs root and unshare -m for real mounts")


def in_private_mounts(tmp_path, shell: str):
    """Run a shell script in its own mount namespace: its mounts vanish when it ends."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **SCRIPTED}
    return subprocess.run(["unshare", "-m", "sh", "-c", shell], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def cli(*args) -> str:
    return " ".join(shlex.quote(part) for part in (sys.executable, "-m", "storyteller", *args))


@needs_mounts
def test_a_read_only_saves_directory(tmp_path, files_of):
    assert play(tmp_path, ["look", "wait"]).returncode == 0
    saves = tmp_path / "saves"
    before = files_of(saves)
    (tmp_path / "more.txt").write_text("open the door\n/save cp\n/export\n/undo\n")
    result = in_private_mounts(tmp_path, f"""
        mount --bind {saves} {saves} && mount -o remount,bind,ro {saves} || exit 99
        {cli("run", "--campaign", "c", "--script", "more.txt")}; echo "run=$?"
        {cli("run", "--campaign", "new", "--script", "more.txt")}; echo "new=$?"
        {cli("delete", "c", "--yes")}; echo "delete=$?"
        {cli("export", "--campaign", "c")}; echo "export=$?"
    """)
    # The story memory's index cannot open read-only: the run stops before any turn.
    assert "run=2" in result.stdout and "new=2" in result.stdout, result.stderr
    assert "delete=2" in result.stdout and "export=2" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("storyteller:")]
    assert len(errors) == 4
    assert "memory index" in errors[0] and "make the saves directory writable" in errors[0]
    assert all("Read-only file system" in line for line in errors[1:])
    assert files_of(saves) == before
    assert [t[1] for t in turns(tmp_path)] == ["look", "wait"]


@needs_mounts
def test_a_full_disk_loses_nothing_and_play_resumes_when_space_is_freed(tmp_path, files_of):
    long_action = "push " * 390  # about 2 KB a turn: the transcript soon needs a new page
    (tmp_path / "two.txt").write_text("look\nwait\n")
    (tmp_path / "more.txt").write_text(f"open the door\n{long_action}\n{long_action}\n"
                                       "/save cp\nlisten\n")
    (tmp_path / "last.txt").write_text("sing\n")
    (tmp_path / "disk").mkdir()
    run = "run --campaign c --saves-dir disk/saves --script"
    result = in_private_mounts(tmp_path, f"""
        mount -t tmpfs -o size=16m tmpfs disk || exit 99
        {cli(*run.split(), "two.txt")} > /dev/null || exit 98
        dd if=/dev/zero of=disk/filler bs=1k 2>/dev/null
        {cli(*run.split(), "more.txt", "--trace", "full.jsonl")}; echo "full=$?"
        cp -a disk/saves during 2>/dev/null
        rm disk/filler
        {cli(*run.split(), "last.txt")}; echo "freed=$?"
        cp -a disk/saves after
    """)
    # A full disk stops the run before its first turn: the story memory's index cannot
    # open (Chroma writes when it opens). One line says so; nothing saved changes.
    # (Turns failing one by one on a full disk are covered by tests/test_saves.py.)
    assert "full=2" in result.stdout and "freed=0" in result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("storyteller:")]
    assert len(errors) == 1 and "disk is full" in errors[0]
    during = [t.input for t in Campaign.load(tmp_path / "during", "c").turns]
    assert during == ["look", "wait"]
    after = [t.input for t in Campaign.load(tmp_path / "after", "c").turns]
    assert after == [*during, "sing"]
