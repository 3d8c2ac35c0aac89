"""The llama.cpp backend (llama-cpp-python), the default narrator.

Prompts go in as token lists that we build ourselves (see template.py), so untrusted
text is tokenized with special-token parsing off and the count we budget with is the
count the model receives. llama-cpp-python's generate() keeps the KV cache of the
longest common prefix with the previous call, so a stable prompt front is reused, and
prefill() evaluates the next prompt's front while the player reads (and, aside, the
front a new layout will have, in a side copy of the cache that the next turn never
waits for).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storyteller import compute
from storyteller.errors import ModelError
from storyteller.generation import GenerationStats, Message, RenderedPrompt, SamplingOptions
from storyteller.narrator.nocopy import NoCopy
from storyteller.narrator.template import (
    TRANSCRIPT_STOP,
    Piece,
    reached_stop,
    render_chat_template,
    render_transcript,
    tokenize_pieces,
)

COUNT_CACHE = 8192  # texts whose token counts are kept
# Tokens a prefill evaluates per hold of the context lock: small, so a turn that wants
# the context waits for one batch at most (about 0.15 s with the embedded model on
# 2 cores), big enough that llama.cpp still evaluates them at full speed.
PREFILL_BATCH = 32


def shared_prefix(first, second) -> int:
    """How many tokens two token sequences share from their start."""
    import numpy as np  # llama-cpp-python's own dependency, loaded with it

    length = min(len(first), len(second))
    differ = np.flatnonzero(np.asarray(first[:length]) != np.asarray(second[:length]))
    return int(differ[0]) if len(differ) else length


@dataclass
class SavedCache:
    """A copy of the context's prompt cache: its tokens and their keys and values."""

    tokens: list[int]
    data: object  # a ctypes byte array, as llama.cpp wrote it
    size: int


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints loader logs on fd 2 even with verbose=False; they would
    scribble over the terminal UI."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_SIZE_LABEL = re.compile(r"(?:(\d+)x)?(\d+(?:\.\d+)?)([KMBT])", re.IGNORECASE)
_SIZE_UNITS = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def read_metadata(model_path: Path) -> dict[str, str]:
    """A GGUF file's metadata, without its weights (the vocabulary only: about a second
    for the embedded model)."""
    from llama_cpp import Llama

    with _quiet_stderr():
        vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    try:
        return dict(vocab.metadata)
    finally:
        vocab.close()


def parameter_count(metadata: dict[str, str]) -> int | None:
    """The parameters a GGUF's general.size_label says ("135M", "1.7B", "8x7B"), or
    None when it has no such label."""
    match = _SIZE_LABEL.fullmatch(metadata.get("general.size_label", "").split("-")[0].strip())
    if match is None:
        return None
    experts, number, unit = match.groups()
    return int(int(experts or 1) * float(number) * _SIZE_UNITS[unit.lower()])


class LlamaCppNarrator:
    def __init__(self, model_path: Path, n_ctx: int | None = None, n_ctx_cap: int = 4096,
                 n_threads: int | None = None, n_gpu_layers: int = 0, flash_attn: bool = False,
                 lora: Path | None = None, vocab_only: bool = False):
        """vocab_only: the tokenizer and chat template without the weights, for prompts
        that are built and never told (`storyteller prompt`): loads in a fraction of a
        second and cannot generate."""
        from llama_cpp import Llama  # heavy: imported only when a model is loaded

        self.model_path = Path(model_path)
        self.model_id = self.model_path.name
        if lora is not None and not Path(lora).is_file():
            raise ModelError(f"LoRA adapter {lora} not found; fix the --lora path.")
        try:
            with _quiet_stderr():
                self._llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=n_ctx or min(self._trained_context(), n_ctx_cap),
                    n_threads=n_threads or max(os.cpu_count() or 1, 1),
                    n_gpu_layers=n_gpu_layers, flash_attn=flash_attn,
                    lora_path=str(lora) if lora and not vocab_only else None,
                    vocab_only=vocab_only, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as error:
            hint = ("check the --lora adapter matches this model" if lora else
                    "check the file is a complete GGUF model or pass another --model")
            raise ModelError(f"Cannot load model {self.model_path}: {error}; {hint} "
                                "(lower --n-ctx if memory ran out).") from None
        self.n_ctx = self._llm.n_ctx()
        self._template = self._llm.metadata.get("tokenizer.chat_template")
        self.parameters = parameter_count(self._llm.metadata) or self._llm._model.n_params()
        self._stop_strings = [] if self._template else TRANSCRIPT_STOP
        self._lock = threading.Lock()  # a Llama context serves one generation at a time
        # While an aside prefill runs, the live cache (what the next turn reuses) is
        # parked here; the aside's own progress is kept in _aside between prefills.
        self._parked: SavedCache | None = None
        self._aside: SavedCache | None = None
        self.vocab_only = vocab_only
        # Its math runs on the process's compute thread (compute.py); a background
        # context (summaries, notes) sets this False and computes on its caller's thread
        # instead, beside the turn: one job of its own (a summary's whole prompt, read in
        # one go by llama.cpp) would hold a turn's next token for seconds.
        self.shared_compute = True
        # Each prompt is fitted by counting the same turns and memories again: a count is
        # a pure function of the text.
        self._count = functools.lru_cache(maxsize=COUNT_CACHE)(self._count_uncached)

    def _compute(self, function, *args):
        return compute.run(function, *args) if self.shared_compute else function(*args)

    def _trained_context(self) -> int:
        metadata = read_metadata(self.model_path)
        architecture = metadata.get("general.architecture", "")
        return int(metadata.get(f"{architecture}.context_length", 2048))

    # -- tokens -------------------------------------------------------------

    def _tokenize(self, text: str, trusted: bool, first: bool) -> list[int]:
        # add_bos on the first piece lets llama.cpp add BOS only if the model wants it.
        return self._llm.tokenize(text.encode("utf-8"), add_bos=first, special=trusted)

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def _count_uncached(self, text: str) -> int:
        return len(self._tokenize(text, trusted=False, first=False))

    def render(self, messages: list[Message]) -> RenderedPrompt:
        return tokenize_pieces(messages, self._pieces(messages), lambda piece, first:
                               self._tokenize(piece.text, piece.trusted, first))

    def _pieces(self, messages: list[Message]) -> list[Piece]:
        if not self._template:
            return render_transcript(messages)
        bos = self._token_text(self._llm.token_bos())
        eos = self._token_text(self._llm.token_eos())
        pieces = render_chat_template(self._template, messages, bos, eos)
        if bos and pieces and pieces[0].trusted and pieces[0].text.startswith(bos):
            # The template writes BOS itself: do not let the tokenizer add a second one.
            pieces[0] = Piece(pieces[0].text[len(bos):], pieces[0].section, True)
            pieces.insert(0, Piece(bos, pieces[0].section, True))
        return pieces

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    # -- the prompt cache -----------------------------------------------------

    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values the live cache holds, in order (while an
        aside prefill runs: those it parked)."""
        parked = self._parked
        return list(parked.tokens) if parked is not None else self._llm._input_ids.tolist()

    def _cached_prefix(self, tokens: list[int]) -> int:
        """How many of `tokens` the context already holds."""
        return shared_prefix(self._llm._input_ids, tokens)

    def _reused(self, tokens: list[int]) -> int:
        """The prompt tokens generate() takes from the cache: the cached prefix, less the
        last one when the whole prompt is cached but its logits must be made again (as
        llama-cpp-python's generate() decides)."""
        prefix = self._cached_prefix(tokens)
        llm = self._llm
        if prefix == len(tokens) and (llm.n_tokens != len(tokens) or llm._requires_eval):
            prefix -= 1
        return max(prefix, 0)

    def prefill(self, tokens: list[int], cancel: threading.Event, aside: bool = False) -> int:
        """Evaluate `tokens` into the cache, PREFILL_BATCH at a time, each batch under the
        lock a generation takes; stops within one batch once cancel is set. What the
        cache held past the shared prefix is dropped first. Returns tokens evaluated.

        aside: into a side copy of the cache instead, so that the live one (the next
        turn's prefix) stays as it is; a generation that comes meanwhile puts the live
        cache back first, and the next aside prefill goes on from where this one
        stopped (a generation whose prompt the side copy holds more of starts from it
        instead). end_aside() makes a finished side copy the live cache."""
        evaluated = 0
        while not cancel.is_set():
            with self._lock:
                if cancel.is_set():
                    break
                if aside:
                    self._enter_aside(tokens)
                else:
                    self._put_back()
                start = self._cached_prefix(tokens)
                if start >= len(tokens):
                    break
                self._llm.n_tokens = start  # eval() drops the cache past n_tokens
                batch = tokens[start:start + PREFILL_BATCH]
                self._compute(self._llm.eval, batch)
                evaluated += len(batch)
        return evaluated

    def end_aside(self, tokens: list[int] | None) -> bool:
        """End an aside prefill: with `tokens`, if the side copy holds them all, it
        becomes the live cache (the old live one is dropped); otherwise the live cache
        is put back. Returns whether the side copy was adopted."""
        with self._lock:
            if self._parked is not None and tokens is not None \
                    and self._cached_prefix(tokens) == len(tokens):
                self._parked = None
                return True
            self._put_back()
            return False

    def _enter_aside(self, tokens: list[int]) -> None:
        """Park the live cache and load the side copy, if that one shares more of
        `tokens` (else the side copy starts from the live cache)."""
        if self._parked is not None:
            return
        self._parked = self._save()
        side = self._aside
        if side is not None and shared_prefix(side.tokens, tokens) > self._cached_prefix(tokens):
            self._load(side)
        self._aside = None

    def _put_back(self) -> None:
        """Keep the side copy for the next aside prefill, and load the live cache."""
        if self._parked is None:
            return
        self._aside = self._save()
        self._load(self._parked)
        self._parked = None

    def _take_closest_cache(self, tokens: list[int]) -> None:
        """Before a generation: the live cache, or the side copy if that one holds more
        of the prompt (a turn whose layout had to move before its aside prefill was over
        reads only what that prefill had not)."""
        self._put_back()
        side = self._aside
        if side is not None and shared_prefix(side.tokens, tokens) > self._cached_prefix(tokens):
            self._load(side)
            self._aside = None

    def _save(self) -> SavedCache:
        import ctypes

        import llama_cpp

        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, data, size, 0)
        return SavedCache(self._llm._input_ids.tolist(), data, written)

    def _load(self, saved: SavedCache) -> None:
        """Make `saved` the cache; if llama.cpp refuses it, the cache is empty (every
        token is evaluated again: slower, never wrong)."""
        import llama_cpp

        llm = self._llm
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        loaded = llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, saved.data, saved.size, 0)
        count = len(saved.tokens) if loaded else 0
        if not loaded:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.input_ids[:count] = saved.tokens[:count]
        llm.n_tokens = count
        llm._requires_eval = True  # the logits are not restored: the last token is re-read

    # -- generation ---------------------------------------------------------

    def stream(self, prompt: RenderedPrompt, options: SamplingOptions,
               cancel: threading.Event, stats: GenerationStats,
               json_schema: dict | None = None) -> Iterator[str]:
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        if self.vocab_only:
            raise ModelError(f"{self.model_id} was loaded for its tokenizer only; it cannot "
                             "narrate.")
        grammar = None
        if json_schema is not None:
            with _quiet_stderr():
                grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False)
        processors = None
        if options.avoid_copying:
            from llama_cpp import LogitsProcessorList

            source = self._tokenize(options.avoid_copying, trusted=False, first=False)
            processors = LogitsProcessorList([NoCopy(source)])
        with self._lock:
            self._take_closest_cache(prompt.tokens)
            self._llm.set_seed(options.seed)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            vocab = self._llm._model.vocab
            text_so_far = ""
            stats.stopped_by = "length"
            stats.evaluated_tokens = len(prompt.tokens) - self._reused(prompt.tokens)
            tokens = self._llm.generate(
                prompt.tokens, top_k=options.top_k, top_p=options.top_p,
                temp=options.temperature, repeat_penalty=options.repeat_penalty,
                grammar=grammar, logits_processor=processors,
            )
            # each step (evaluate, sample) on the compute thread: see compute.py
            for token in iter(lambda: self._compute(next, tokens, None), None):
                if cancel.is_set():
                    stats.stopped_by = "cancel"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    stats.stopped_by = "eos"
                    break
                stats.completion_tokens += 1
                chunk = decoder.decode(self._llm.detokenize([token]))
                text_so_far += chunk
                if reached_stop(text_so_far, self._stop_strings):
                    stats.stopped_by = "eos"
                    break
                if chunk:
                    yield chunk
                if stats.completion_tokens >= options.max_tokens:
                    break

    def close(self) -> None:
        self._llm.close()
