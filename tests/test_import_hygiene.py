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
    "storyteller.narrator.transformers",
    "storyteller.narrator.openai",
    "storyteller.engine.guard",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module):
    code = (f"import sys, {module}; "
            "bad = [m for m in ('textual', 'llama_cpp', 'torch', 'transformers') "
            "if m in sys.modules]; "
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""


def test_tui_does_import_textual():
    """Guards the test above against a check that can never fail."""
    code = "import sys, storyteller.tui.app; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "True"
