"""The transformers backend: a Hugging Face model folder, or a GGUF file loaded with
gguf_file= (de-quantized; needs the gguf and accelerate packages).

Prompts are rendered with the tokenizer's chat template through template.py and
tokenized piece by piece, untrusted pieces with split_special_tokens=True, so control
tokens typed by the player stay text and the count we budget with is the count the
model receives. Generation runs in a thread feeding a TextIteratorStreamer; a
StoppingCriteria ends it at the next token once cancel is set.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from storyteller.errors import ModelError
from storyteller.generation import GenerationStats, Message, RenderedPrompt, SamplingOptions
from storyteller.narrator import template

POLL_SECONDS = 0.05  # how often a waiting stream looks at the cancel event


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def json_opening(json_schema: dict) -> str:
    """Without a grammar, the answer is started for the model: '{' (or '[')."""
    return "[" if json_schema.get("type") == "array" else "{"


class TransformersNarrator:
    def __init__(self, folder: Path, gguf_file: str | None = None, n_ctx: int | None = None,
                 n_ctx_cap: int = 4096, device: str = "auto", dtype: str = "auto",
                 n_threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if n_threads:
            torch.set_num_threads(n_threads)
        self.model_id = gguf_file or Path(folder).name
        self.device = pick_device(device)
        where = Path(folder) / gguf_file if gguf_file else Path(folder)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
            self._model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=gguf_file,
                dtype=dtype if dtype == "auto" else getattr(torch, dtype),
            ).to(self.device).eval()
        except (OSError, ValueError, RuntimeError, ImportError, AttributeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ModelError(f"transformers cannot load {where}: {reason}; check --device "
                                "and --dtype, or use --backend llamacpp for a .gguf file."
                                ) from None
        trained = getattr(self._model.config, "max_position_embeddings", None) or n_ctx_cap
        self.n_ctx = n_ctx or min(trained, n_ctx_cap)
        self.parameters = self._model.num_parameters()
        self._template = self._tokenizer.chat_template
        self._stop_strings = [] if self._template else template.TRANSCRIPT_STOP
        self._lock = threading.Lock()  # one generation at a time, held by its thread
        self.last_generated = 0  # tokens the last generation produced, even after cancel

    # -- tokens -------------------------------------------------------------

    def _tokenize(self, text: str, trusted: bool) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False,
                               split_special_tokens=not trusted)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, trusted=False))

    def render(self, messages: list[Message]) -> RenderedPrompt:
        return template.tokenize_pieces(messages, self._pieces(messages), lambda piece, _first:
                               self._tokenize(piece.text, piece.trusted))

    def _pieces(self, messages: list[Message]) -> list[template.Piece]:
        if self._template:
            return template.render_chat_template(self._template, messages,
                                        self._tokenizer.bos_token or "",
                                        self._tokenizer.eos_token or "")
        pieces = template.render_transcript(messages)
        bos = self._tokenizer.bos_token
        if bos and pieces:  # a base model is trained on text that starts with BOS
            pieces.insert(0, template.Piece(bos, pieces[0].section, trusted=True))
        return pieces

    # -- generation ---------------------------------------------------------

    def stream(self, prompt: RenderedPrompt, options: SamplingOptions,
               cancel: threading.Event, stats: GenerationStats,
               json_schema: dict | None = None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        prompt_tokens = list(prompt.tokens)
        opening = json_opening(json_schema) if json_schema is not None else ""
        if opening:  # no grammar here: start the JSON; the caller validates it
            prompt_tokens += self._tokenize(opening, trusted=False)
        finished = threading.Event()  # set by a stop sequence, like cancel but not the player's
        narrator = self
        self.last_generated = 0

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                narrator.last_generated = input_ids.shape[1] - len(prompt_tokens)
                return cancel.is_set() or finished.is_set()

        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True,
                                        skip_special_tokens=True, timeout=POLL_SECONDS)
        input_ids = torch.tensor([prompt_tokens], device=self.device)
        sample = options.temperature > 0
        arguments = dict(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=options.max_tokens, do_sample=sample,
            temperature=options.temperature if sample else None,
            top_p=options.top_p if sample else None, top_k=options.top_k if sample else None,
            repetition_penalty=options.repeat_penalty, streamer=streamer,
            stopping_criteria=StoppingCriteriaList([Stop()]),
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
        )
        failures: list[BaseException] = []
        worker = threading.Thread(target=self._generate,
                                  args=(arguments, options.seed, streamer, failures), daemon=True)
        worker.start()
        stats.stopped_by = "length"
        text_so_far = ""
        if opening:
            text_so_far = opening
            yield opening
        while True:
            try:
                chunk = next(streamer)
            except queue.Empty:
                if cancel.is_set():
                    break
                continue
            except StopIteration:
                break
            if cancel.is_set():
                break
            text_so_far += chunk
            if template.reached_stop(text_so_far, self._stop_strings):
                finished.set()
                stats.stopped_by = "eos"
                break
            if chunk:
                yield chunk
        if cancel.is_set():
            stats.stopped_by = "cancel"
        elif stats.stopped_by != "eos":
            worker.join()
            if failures:
                raise ModelError(f"transformers failed while generating: {failures[0]}; "
                                    "lower --n-ctx or --max-tokens, or try --device cpu.")
            if self.last_generated < options.max_tokens:
                stats.stopped_by = "eos"
        stats.completion_tokens = self.last_generated

    def _generate(self, arguments: dict, seed: int, streamer,
                  failures: list[BaseException]) -> None:
        import torch

        with self._lock:
            try:
                torch.manual_seed(seed)
                with torch.inference_mode():
                    self._model.generate(**arguments)
            except Exception as error:  # reported by stream() in the caller's thread
                failures.append(error)
            finally:
                streamer.end()

    def close(self) -> None:
        with self._lock:
            self._model = None
