"""Loading a model that is not there, or not a model: one clear line (no model needed)."""

import pytest

from storyteller.config import Settings
from storyteller.errors import ModelError
from storyteller.narrator.registry import load_narrator


def test_transformers_on_a_folder_without_a_model_is_one_clear_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="transformers cannot load") as error:
        load_narrator(Settings(model=str(tmp_path)))
    assert "\n" not in str(error.value)
