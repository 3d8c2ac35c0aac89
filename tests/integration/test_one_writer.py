"""One writer per campaign: a campaign open in one storyteller process is refused, in one
line, to every other that would write it, and is free again the moment that process dies
(SIGKILL included: the kernel drops the lock)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from support import run_cli

from storyteller.engine.session import open_game
from storyteller.errors import CampaignBusyError
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign
from storyteller.storage.listing import delete_campaign, list_campaigns
from storyteller.storage.lock import hold_campaign, open_elsewhere

SCRIPTED = ["--backend", "scripted", "--extractor-model", "off", "--max-tokens", "8"]


def start_slow_run(tmp_path, campaign="shared"):
    """A real `storyteller run` that plays slowly (the scripted narrator, 1 s a word)."""
    script = tmp_path / "slow.txt"
    script.write_text("\n".join(f"step {i}" for i in range(50)) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STORYTELLER_SCRIPTED_DELAY": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "storyteller", "run", "--campaign", campaign, "--script",
         str(script), *SCRIPTED], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)


def wait_until_open(tmp_path, process, campaign="shared"):
    folder = tmp_path / "saves" / campaign
    deadline = time.monotonic() + 120
    while not open_elsewhere(folder):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the first run never opened the campaign"
        time.sleep(0.1)


def test_a_second_process_is_refused_until_the_first_is_killed(tmp_path):
    first = start_slow_run(tmp_path)
    try:
        wait_until_open(tmp_path, first)
        script = tmp_path / "one.txt"
        script.write_text("look\n")
        refused = run_cli("run", "--campaign", "shared", "--script", str(script), *SCRIPTED,
                          cwd=tmp_path)
        expected = (f"storyteller: Campaign 'shared' is open in another storyteller (pid "
                    f"{first.pid} on {socket.gethostname()}): close it there, or wait.")
        assert (refused.returncode, refused.stderr.strip()) == (2, expected)
        for command in (["reindex", "--campaign", "shared"], ["delete", "shared", "--yes"]):
            result = run_cli(*command, cwd=tmp_path)
            assert (result.returncode, result.stderr.strip()) == (2, expected)
        listed = run_cli("campaigns", cwd=tmp_path)  # reading works while it is open
        assert listed.returncode == 0
        assert f"* shared: open in another storyteller (pid {first.pid}" in listed.stdout
        assert run_cli("export", "--campaign", "shared", cwd=tmp_path).returncode == 0
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    assert open_elsewhere(tmp_path / "saves" / "shared") is None  # no stale lock
    played = run_cli("run", "--campaign", "shared", "--script", str(script), *SCRIPTED,
                     cwd=tmp_path)
    assert played.returncode == 0, played.stderr
    assert Campaign.load(tmp_path / "saves", "shared").turns[-1].input == "look"


def test_a_game_holds_its_campaign_until_it_closes(settings):
    game = open_game(settings, "quest", ScriptedNarrator())
    folder = game.campaign.path
    with pytest.raises(CampaignBusyError, match="'quest' is open in another storyteller"):
        open_game(settings, "quest", ScriptedNarrator())
    with pytest.raises(CampaignBusyError):
        delete_campaign(settings.saves_dir, "quest")
    assert [info.open_elsewhere for info in list_campaigns(settings.saves_dir)] == [
        f"pid {os.getpid()} on {socket.gethostname()}"]
    game.close()
    assert open_elsewhere(folder) is None
    with hold_campaign(folder), pytest.raises(CampaignBusyError):  # as `import` takes it
        open_game(settings, "quest", ScriptedNarrator())
    open_game(settings, "quest", ScriptedNarrator()).close()
    delete_campaign(settings.saves_dir, "quest")
    assert not folder.exists()


def test_a_refused_new_campaign_writes_nothing(settings):
    settings.world = "atlantis"
    with pytest.raises(Exception, match="No world named 'atlantis'"):
        open_game(settings, "new", ScriptedNarrator())
    assert not (settings.saves_dir / "new").exists()
