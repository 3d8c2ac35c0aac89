"""The core runs headless: importing it must not pull in Textual (or the model libs)."""

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "storyteller"
CORE_MODULES = sorted(
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if "tui" not in path.parts and path.name != "__main__.py")
# Opening the app or a game must not wait for these: they load when a memory opens.
HEAVY = ("chromadb", "torch", "sentence_transformers", "transformers")
LIGHT_MODULES = ["storyteller.cli", "storyteller.engine.session", "storyteller.tui.app",
                 "storyteller.memory.story", "storyteller.memory.reindex"]


def imported(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of the watched modules importing `modules` (in a fresh process) loads."""
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
            f"print(','.join(m for m in {watched!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_core_does_not_import_textual_or_a_model_library():
    assert len(CORE_MODULES) > 40
    assert imported(CORE_MODULES, ("textual", "llama_cpp", "torch", "transformers")) == []


def test_tui_does_import_textual():
    """Guards the test above against a check that can never fail."""
    assert imported(["storyteller.tui.app"], ("textual",)) == ["textual"]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_heavy_memory_libraries_load_lazily(module):
    assert imported([module], HEAVY) == []


def test_the_store_does_import_chromadb():
    """Guards the test above: the check sees a heavy import when there is one."""
    assert imported(["storyteller.memory.store"], ("chromadb",)) == ["chromadb"]
