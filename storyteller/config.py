"""Settings: one object with documented fields; every field can be set by an
environment variable with the STORYTELLER_ prefix (e.g. STORYTELLER_SAVES_DIR)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from storyteller.generation import Sampling

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Nothing is ever downloaded from a model hub, and Chroma does not phone home.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
}.items():
    os.environ.setdefault(_name, _value)


BACKENDS = ("llamacpp", "transformers", "openai", "scripted")


class Tuning(Sampling):
    """What a player tunes per campaign (the settings screen, kept in campaign.json):
    the sampling, and how much the content log records."""

    content_log_level: int = Field(
        0, ge=0, le=3, description="Content log in saves/<campaign>/logs/: 0 off, 1 per-turn "
        "summary, 2 key stages, 3 full prompts and outputs.")


class Settings(Tuning, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STORYTELLER_", extra="ignore")

    saves_dir: Path = Field(Path("saves"), description="Where campaigns are stored.")
    worlds_dir: Path | None = Field(
        None, description="Where `storyteller worlds import` writes worlds (and where they "
        "are found beside the shipped ones in prompts/worlds/); default: worlds/ beside "
        "the saves directory.")
    prompts_dir: Path = Field(
        PROJECT_DIR / "prompts", description="System prompt and worlds/*.toml."
    )
    models_dir: Path = Field(PROJECT_DIR / "models", description="Where GGUF files are looked up.")
    model: str = Field("embedded", description="A preset from models/models.toml, a .gguf path, "
                       "a Hugging Face model folder, or a model name on a server.")
    backend: Literal[BACKENDS] | None = Field(
        None, description="Backend, when the model alone does not say; 'scripted' replays "
        "canned replies (tests and benchmarks where the model is beside the point).")
    scripted_delay: float = Field(0.0, ge=0, description="Seconds per word of the scripted "
                                  "backend, to make its narration stream like a model's.")
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. "
                                 "http://127.0.0.1:8080/v1 (implies --backend openai).")
    api_key: SecretStr | None = Field(None, description="Server API key; never saved or logged.")
    request_timeout: float = Field(120.0, gt=0, description="Seconds to wait for a server.")
    request_retries: int = Field(2, ge=0, le=10, description="Retries of a failed server call.")
    n_gpu_layers: int = Field(0, ge=-1, description="llama.cpp layers on the GPU (-1: all).")
    flash_attn: bool = Field(False, description="llama.cpp flash attention.")
    lora: Path | None = Field(None, description="A LoRA adapter (GGUF) for llama.cpp.")
    device: str = Field("auto", description="transformers device: auto, cpu, cuda, mps.")
    dtype: str = Field("auto", description="transformers dtype: auto, float32, bfloat16, "
                       "float16.")
    world: str = Field("emberfall", description="World for new campaigns: a shipped one "
                       "from prompts/worlds/ or an imported one from the worlds folder.")
    n_ctx: int | None = Field(None, ge=256, description="Context size; default: the model's.")
    n_ctx_cap: int = Field(4096, ge=256, description="Upper bound on the default context size.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp.")
    seed: int | None = Field(None, description="Sampling seed; None draws a new one each turn.")
    share_summary: float = Field(0.15, ge=0, le=1, description="Context share for the summary.")
    share_recalled: float = Field(0.20, ge=0, le=1, description="Context share for the "
                                  "recalled block (what the scene needs from the past).")
    share_history: float = Field(0.55, ge=0, le=1, description="Context share for history.")
    summary_high_watermark: float = Field(
        0.7, gt=0, le=1, description="History fill (of its share) that starts a summary.")
    summary_low_watermark: float = Field(
        0.35, gt=0, le=1, description="History fill (of its share) a summary brings it to.")
    max_input_chars: int = Field(2000, ge=10, description="Longer player input is cut.")
    memory_url: str | None = Field(
        None, description="Chroma server for the story memory (http://HOST:PORT); default: "
                          "an embedded index in saves/<campaign>/memory/.")
    prefill: bool = Field(True, description="llama.cpp: evaluate the next prompt's stable "
                          "front while the player reads (off: only for comparison).")
    extractor_model: str = Field(
        "auto", description="Model that notes facts after each turn: like --model, 'off', or "
                            "'auto': the narrator's model if it has 1B parameters or more.")

    @property
    def user_worlds_dir(self) -> Path:
        """The player's own (imported) worlds: worlds_dir, else worlds/ beside saves/."""
        return self.worlds_dir or self.saves_dir.parent / "worlds"
