"""The model registry: presets, what a --model value resolves to, `storyteller models`,
and the one-line errors when a model is missing."""

import shutil
from pathlib import Path

import pytest

from storyteller.cli import main
from storyteller.config import Settings
from storyteller.errors import ModelError
from storyteller.narrator.registry import (
    embedded_model_path,
    load_extractor,
    load_presets,
    resolve_model,
    takes_notes,
    with_preset_sampling,
)
from storyteller.narrator.scripted import ScriptedNarrator

REPO = Path(__file__).resolve().parents[2]
PRESET_NAMES = {"embedded", "llama-3.2-1b", "llama-3.2-3b", "qwen2.5-1.5b", "phi-3-mini",
                "gemma-2-2b", "llama-3.1-8b"}


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(REPO / "models" / "models.toml", folder)
    return folder


def settings_for(models_dir: Path, **fields) -> Settings:
    return Settings(models_dir=models_dir, saves_dir=models_dir.parent / "saves", **fields)


def test_the_shipped_presets_are_complete():
    presets = load_presets(REPO / "models")
    assert set(presets) == PRESET_NAMES
    for preset in presets.values():
        assert preset.file.endswith(".gguf") and preset.n_ctx >= 2048 and preset.chat_format
        assert preset.size_mb > 0 and preset.kv_kib_per_token > 0
        assert {"temperature", "top_p", "top_k", "repeat_penalty"} <= set(preset.sampling)
        assert preset.embedded or "/" in preset.source  # where to get the file
    assert presets["llama-3.1-8b"].file == "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"


def test_presets_resolve_to_their_files(models_dir):
    choice = resolve_model(settings_for(models_dir))
    assert (choice.backend, Path(choice.name), choice.preset.name) == (
        "llamacpp", embedded_model_path(), "embedded")
    (models_dir / "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf").write_bytes(b"GGUF")
    choice = resolve_model(settings_for(models_dir, model="qwen2.5-1.5b"))
    assert choice.name == str(models_dir / "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf")
    assert choice.preset.chat_format == "chatml"


def test_model_values_pick_their_backend(models_dir, tmp_path):
    gguf = tmp_path / "story.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(settings_for(models_dir, model=str(gguf))).backend == "llamacpp"
    (models_dir / "local.gguf").write_bytes(b"GGUF")
    assert resolve_model(settings_for(models_dir, model="local.gguf")).name == str(
        models_dir / "local.gguf")
    as_transformers = resolve_model(settings_for(models_dir, model=str(gguf),
                                                 backend="transformers"))
    assert (as_transformers.backend, as_transformers.name, as_transformers.gguf_file) == (
        "transformers", str(tmp_path), "story.gguf")
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_model(settings_for(models_dir, model=str(folder))).backend == "transformers"
    remote = resolve_model(settings_for(models_dir, model="qwen2.5:7b",
                                        base_url="http://127.0.0.1:1/v1"))
    assert (remote.backend, remote.name) == ("openai", "qwen2.5:7b")
    assert resolve_model(settings_for(models_dir, base_url="http://h/v1")).name == ""


def test_wrong_model_values_say_what_was_looked_for(models_dir, tmp_path):
    with pytest.raises(ModelError, match=r"not a preset \(embedded, llama-3.2-1b.*"
                                            r"nor a \.gguf file or model folder at nope"):
        resolve_model(settings_for(models_dir, model="nope"))
    with pytest.raises(ModelError, match="put gemma-2-2b-it-Q4_K_M.gguf "
                                            r"\(from bartowski/gemma-2-2b-it-GGUF\) in .*models/"):
        resolve_model(settings_for(models_dir, model="gemma-2-2b"))
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="use --backend transformers"):
        resolve_model(settings_for(models_dir, model=str(folder), backend="llamacpp"))
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(ModelError, match="is not a .gguf file"):
        resolve_model(settings_for(models_dir, model=str(text)))


def test_a_broken_presets_file_is_one_clear_line(models_dir):
    (models_dir / "models.toml").write_text('[x]\nfile = "a.gguf"\nsize = 3\n')
    with pytest.raises(ModelError, match="not a valid presets file"):
        load_presets(models_dir)


def test_preset_sampling_applies_unless_the_player_set_it(models_dir, monkeypatch):
    (models_dir / "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf").write_bytes(b"GGUF")
    settings = with_preset_sampling(settings_for(models_dir, model="qwen2.5-1.5b"))
    assert (settings.temperature, settings.top_k, settings.repeat_penalty) == (0.7, 20, 1.05)
    chosen = with_preset_sampling(settings_for(models_dir, model="qwen2.5-1.5b",
                                               temperature=1.2))
    assert (chosen.temperature, chosen.top_k) == (1.2, 20)
    monkeypatch.setenv("STORYTELLER_TOP_K", "5")
    assert with_preset_sampling(settings_for(models_dir, model="qwen2.5-1.5b")).top_k == 5


def test_the_extractor_is_the_narrator_unless_another_model_is_asked_for(models_dir):
    narrator = ScriptedNarrator()
    assert load_extractor(settings_for(models_dir, backend="transformers"), narrator) is narrator
    assert load_extractor(settings_for(models_dir, base_url="http://h/v1"), narrator) is narrator
    with pytest.raises(ModelError, match="Model 'other.gguf' not found"):
        load_extractor(settings_for(models_dir, extractor_model="other.gguf"), narrator)


def test_note_taking_is_off_by_default_for_a_narrator_under_1b_parameters():
    from storyteller.narrator.llamacpp import parameter_count, read_metadata

    embedded = parameter_count(read_metadata(embedded_model_path()))  # no weights loaded
    assert embedded == 135 * 10**6
    auto = Settings()
    assert auto.extractor_model == "auto" and not takes_notes(auto, embedded)
    assert takes_notes(auto, parameter_count({"general.size_label": "1.2B"}))
    assert takes_notes(auto, None)  # a server does not say its size
    assert takes_notes(Settings(extractor_model="embedded"), embedded)
    assert not takes_notes(Settings(extractor_model="off"), 3 * 10**9)
    assert parameter_count({"general.size_label": "8x7B"}) == 56 * 10**9
    assert parameter_count({"general.size_label": "large"}) is None


def test_storyteller_models_lists_presets_and_files(models_dir, monkeypatch, capsys):
    (models_dir / "Llama-3.2-1B-Instruct-Q4_K_M.gguf").write_bytes(b"\x00" * 3 * 2**20)
    (models_dir / "my-finetune.gguf").write_bytes(b"\x00" * 2**20)
    monkeypatch.setenv("STORYTELLER_MODELS_DIR", str(models_dir))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith(" ")}
    assert set(rows) == PRESET_NAMES | {"my-finetune.gguf"}
    assert "present" in rows["embedded"] and "present" in rows["llama-3.2-1b"]
    assert " 3 MB" in rows["llama-3.2-1b"]  # the real file's size
    # RAM: 3 MB of weights + 8192 tokens x 32 KiB of KV cache (256 MB) + 200 MB
    assert "~  459 MB" in rows["llama-3.2-1b"]
    assert "missing" in rows["llama-3.1-8b"] and "4.8 GB" in rows["llama-3.1-8b"]
    hint = lines[lines.index(rows["llama-3.1-8b"]) + 1]
    assert "put Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf (from bartowski/" in hint
    assert str(models_dir) in hint
    assert "--model my-finetune.gguf" in rows["my-finetune.gguf"]


def test_new_flags_reach_the_settings(tmp_path):
    from storyteller.cli import build_parser, settings_from

    args = build_parser().parse_args([
        "--model", "m", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
        "--api-key", "sk-secret", "--extractor-model", "small", "--n-gpu-layers", "-1",
        "--flash-attn", "--lora", str(tmp_path / "a.gguf"), "--device", "cpu",
        "--dtype", "float32"])
    settings = settings_from(args)
    assert (settings.backend, settings.base_url, settings.extractor_model) == (
        "openai", "http://127.0.0.1:9/v1", "small")
    assert (settings.n_gpu_layers, settings.flash_attn, settings.device) == (-1, True, "cpu")
    assert settings.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(settings) and "sk-secret" not in str(settings.model_dump())


def test_a_missing_lora_is_one_clear_line(tmp_path):
    from storyteller.narrator.registry import load_narrator

    with pytest.raises(ModelError, match="fix the --lora path"):
        load_narrator(Settings(lora=tmp_path / "missing-adapter.gguf"))
