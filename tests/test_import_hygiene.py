"""The core runs headless: importing it must not pull in Textual (or the model libs)."""

import subprocess
import sys

import pytest

CORE_MODULES = [
    "storyteller.cli",
    "storyteller.config",
    "storyteller.campaign",
    "storyteller.headless",
    "storyteller.export",
    "storyteller.manage",
    "storyteller.engine.content_log",
    "storyteller.engine.game",
    "storyteller.engine.session",
    "storyteller.engine.memory_view",
    "storyteller.engine.tuning",
    "storyteller.context.prompt",
    "storyteller.narrator.registry",
    "storyteller.narrator.llamacpp",
    "storyteller.memory.entries",
    "storyteller.memory.journal",
    "storyteller.memory.embedder",
    "storyteller.memory.store",
    "storyteller.memory.extract",
    "storyteller.memory.retrieve",
    "storyteller.memory.story",
    "storyteller.memory.reindex",
    "storyteller.memory.chroma_server",
    "storyteller.narrator.transformers",
    "storyteller.narrator.openai",
    "storyteller.engine.guard",
    "storyteller.interop.importer",
]
# Opening the app or a game must not wait for these: they load when a memory opens.
HEAVY = ("chromadb", "torch", "sentence_transformers", "transformers")
LIGHT_MODULES = ["storyteller.cli", "storyteller.engine.session", "storyteller.tui.app",
                 "storyteller.memory.story", "storyteller.memory.reindex"]


def imported(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of the watched modules importing `module` (in a fresh process) loads."""
    code = (f"import sys, {module}; "
            f"print(','.join(m for m in {watched!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return [name for name in result.stdout.strip().split(",") if name]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module):
    assert imported(module, ("textual", "llama_cpp", "torch", "transformers")) == []


def test_tui_does_import_textual():
    """Guards the test above against a check that can never fail."""
    assert imported("storyteller.tui.app", ("textual",)) == ["textual"]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_heavy_memory_libraries_load_lazily(module):
    assert imported(module, HEAVY) == []


def test_the_store_does_import_chromadb():
    """Guards the test above: the check sees a heavy import when there is one."""
    assert imported("storyteller.memory.store", ("chromadb",)) == ["chromadb"]
