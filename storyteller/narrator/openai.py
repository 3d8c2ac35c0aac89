"""The openai backend: streaming chat completions (server-sent events) from any
OpenAI-compatible /v1 server: llama.cpp's llama-server, llama-cpp-python's server, vLLM,
Ollama, LM Studio.

The server applies its own chat template and tokenizes the whole prompt with control
tokens on, so we cannot keep untrusted text out of them the way the local backends do:
control-token markers in message text get an invisible word joiner instead (see
template.neutralize_control_markers). Token counts come from the server's tokenize
endpoint when it has one (llama-cpp-python: /extras/tokenize, llama.cpp: /tokenize),
plus a safe estimate of the tokens its template adds; without one, a safe estimate.

The HTTP stream is read in a thread so that cancel is seen within POLL_SECONDS even
while the server is silent (evaluating a long prompt); cancelling closes the connection,
which tells the server to stop.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator

import httpx

from storyteller.errors import ModelError
from storyteller.generation import GenerationStats, Message, RenderedPrompt, SamplingOptions
from storyteller.narrator.template import neutralize_control_markers

POLL_SECONDS = 0.05
MESSAGE_OVERHEAD = 6  # tokens a chat template wraps around one message (role, markers)
TEMPLATE_OVERHEAD = 32  # a template's fixed additions (BOS, a date line, the reply header)
BYTES_PER_TOKEN_ESTIMATE = 3  # English runs at ~4-5 bytes a token: 3 over-counts, safely
DEFAULT_SERVER_CONTEXT = 4096  # when neither --n-ctx nor the server says
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
RETRY_BACKOFF_SECONDS = 0.5  # doubled after each failed try
TOKENIZE_ROUTES = (("/extras/tokenize", "input"), ("/tokenize", "content"))
_END = object()


class OpenAINarrator:
    def __init__(self, base_url: str, model: str = "", api_key: str | None = None,
                 n_ctx: int | None = None, timeout: float = 120.0, retries: int = 2,
                 transport: httpx.BaseTransport | None = None):
        """`transport` replaces the network (tests use httpx.MockTransport)."""
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, transport=transport,
                                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        served = self._served_models()
        self.model_id = model or served[0]["id"]
        self.parameters = None  # a server does not say
        self.n_ctx = n_ctx or self._context_size(served) or DEFAULT_SERVER_CONTEXT
        self._tokenize_route = self._find_tokenize_route()
        self._token_cache: dict[str, list[int]] = {}
        self._response_format_kind = "json_schema"  # falls back to "json_object"

    # -- talking to the server --------------------------------------------------

    def _root(self) -> str:
        """The server root: tokenize endpoints live beside /v1, not under it."""
        return self.base_url.removesuffix("/v1")

    def _request(self, method: str, url: str, stream: bool = False,
                 **kwargs) -> httpx.Response:
        """One call under the one retry policy: a connection error or a busy or failing
        server (RETRY_STATUS) is tried again, `retries` times, waiting longer each time.
        With stream=True the answer's body is left to read (close the response)."""
        for attempt in range(self.retries + 1):
            try:
                response = self._client.send(self._client.build_request(method, url, **kwargs),
                                             stream=stream)
            except httpx.TransportError as error:
                if attempt == self.retries:
                    raise ModelError(f"Cannot reach the model server at {self.base_url} "
                                     f"({type(error).__name__}); check --base-url and that "
                                     "the server is running.") from None
            else:
                if response.status_code not in RETRY_STATUS or attempt == self.retries:
                    return response
                response.close()
            time.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")

    def _served_models(self) -> list[dict]:
        response = self._request("GET", f"{self.base_url}/models")
        if response.status_code in (401, 403):
            raise ModelError(f"The model server at {self.base_url} refused the API key "
                                f"(HTTP {response.status_code}); pass --api-key or set "
                                "STORYTELLER_API_KEY.")
        if response.status_code != 200:
            raise ModelError(f"{self.base_url}/models answered HTTP {response.status_code}; "
                                "check --base-url points at the server's /v1.")
        models = response.json().get("data") or []
        if not models:
            raise ModelError(f"The server at {self.base_url} serves no model; start it "
                                "with one, or pass --model with a name it serves.")
        return models

    def _context_size(self, served: list[dict]) -> int | None:
        """vLLM says max_model_len; llama.cpp's llama-server says meta.n_ctx_train."""
        entry = next((m for m in served if m.get("id") == self.model_id), served[0])
        size = entry.get("max_model_len") or (entry.get("meta") or {}).get("n_ctx_train")
        return int(size) if size else None

    def _find_tokenize_route(self) -> tuple[str, str] | None:
        for route, field_name in TOKENIZE_ROUTES:
            try:
                response = self._client.post(f"{self._root()}{route}",
                                              json={field_name: "probe"})
            except httpx.HTTPError:
                return None
            if response.status_code == 200 and isinstance(response.json().get("tokens"), list):
                return route, field_name
        return None

    # -- tokens -------------------------------------------------------------------

    def _tokens(self, text: str) -> list[int] | None:
        """The server's tokens for text, or None when it cannot tokenize."""
        if self._tokenize_route is None or not text:
            return [] if self._tokenize_route else None
        if text not in self._token_cache:
            route, field_name = self._tokenize_route
            response = self._request("POST", f"{self._root()}{route}", json={field_name: text})
            if response.status_code != 200:
                raise ModelError(f"The server's {route} answered HTTP "
                                    f"{response.status_code}; check the server's log.")
            if len(self._token_cache) > 4096:
                self._token_cache.clear()
            self._token_cache[text] = [t if isinstance(t, int) else t["id"]
                                       for t in response.json()["tokens"]]
        return self._token_cache[text]

    def count_tokens(self, text: str) -> int:
        text = neutralize_control_markers(text)
        tokens = self._tokens(text)
        return len(tokens) if tokens is not None else _estimate(text)

    def render(self, messages: list[Message]) -> RenderedPrompt:
        """What we send: the messages, markers neutralized. The text shows them in a
        plain layout (the server's template is not known here)."""
        tokens: list[int] = []
        estimated = TEMPLATE_OVERHEAD
        sections: dict[str, int] = {}
        text = ""
        for message in messages:
            first_section = message.parts[0].section
            sections[first_section] = sections.get(first_section, 0) + MESSAGE_OVERHEAD
            estimated += MESSAGE_OVERHEAD
            text += f"[{message.role}]\n"
            for part in message.parts:
                content = neutralize_control_markers(part.text)
                part_tokens = self._tokens(content)
                if part_tokens is None:
                    count = _estimate(content)
                    estimated += count
                else:
                    count = len(part_tokens)
                    tokens.extend(part_tokens)
                sections[part.section] = sections.get(part.section, 0) + count
                text += content
            text += "\n"
        last = messages[-1].parts[-1].section if messages else "input"
        sections[last] = sections.get(last, 0) + TEMPLATE_OVERHEAD
        return RenderedPrompt(messages, text, tokens, sections, estimated_tokens=estimated)

    # -- generation -------------------------------------------------------------------

    def request_body(self, prompt: RenderedPrompt, options: SamplingOptions,
                     json_schema: dict | None = None, stream: bool = True) -> dict:
        body = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": neutralize_control_markers(m.content)}
                         for m in prompt.messages],
            "temperature": options.temperature, "top_p": options.top_p,
            "max_tokens": options.max_tokens, "seed": options.seed, "stream": stream,
            # not in OpenAI's API, understood by llama.cpp and vLLM, ignored elsewhere:
            "top_k": options.top_k, "repeat_penalty": options.repeat_penalty,
        }
        if json_schema is not None:
            body["response_format"] = self._response_format(json_schema)
        return body

    def _response_format(self, json_schema: dict) -> dict:
        if self._response_format_kind == "json_schema":  # OpenAI, llama-server, vLLM
            return {"type": "json_schema",
                    "json_schema": {"name": "answer", "schema": json_schema, "strict": True}}
        return {"type": "json_object", "schema": json_schema}  # llama-cpp-python

    def stream(self, prompt: RenderedPrompt, options: SamplingOptions,
               cancel: threading.Event, stats: GenerationStats,
               json_schema: dict | None = None) -> Iterator[str]:
        events: queue.Queue = queue.Queue()
        done = threading.Event()
        body = self.request_body(prompt, options, json_schema)
        reader = threading.Thread(target=self._read_events, args=(body, events, done),
                                  daemon=True)
        reader.start()
        stats.stopped_by = "length"
        try:
            while True:
                try:
                    event = events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if cancel.is_set():
                        break
                    continue
                if cancel.is_set() or event is _END:
                    break
                if isinstance(event, ModelError):
                    raise event
                chunk, finish_reason, usage = event
                if finish_reason:
                    stats.stopped_by = "length" if finish_reason == "length" else "eos"
                if chunk:
                    stats.completion_tokens += 1  # servers stream about a token a chunk
                    yield chunk
                if usage:  # a server that reports usage knows better
                    stats.completion_tokens = usage.get("completion_tokens", 0)
        finally:
            done.set()  # the reader closes the connection: the server stops generating
        if cancel.is_set():
            stats.stopped_by = "cancel"

    def _read_events(self, body: dict, events: queue.Queue, done: threading.Event) -> None:
        """Put (chunk, finish_reason, usage) tuples, then _END or a ModelError."""
        url = f"{self.base_url}/chat/completions"
        try:
            response = self._request("POST", url, stream=True, json=body)
            if self._refuses_json_schema(response, body):
                response = self._request("POST", url, stream=True, json=body)
            try:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(_server_error(response, self.base_url))
                self._forward(response, events, done)
            finally:
                response.close()
        except httpx.HTTPError as error:
            if not done.is_set():
                events.put(ModelError(f"The model server at {self.base_url} failed "
                                      f"({type(error).__name__}); check it is running and "
                                      "raise STORYTELLER_REQUEST_TIMEOUT if it is slow."))
        except ModelError as error:
            events.put(error)
        finally:
            events.put(_END)

    def _refuses_json_schema(self, response: httpx.Response, body: dict) -> bool:
        """A server that does not know {"type": "json_schema"} (llama-cpp-python's speaks
        {"type": "json_object", "schema": ...}): switch dialects, for good."""
        if response.status_code < 400 or self._response_format_kind != "json_schema" \
                or "response_format" not in body:
            return False
        response.read()
        response.close()
        if "response_format" not in response.text:
            return False
        self._response_format_kind = "json_object"
        body["response_format"] = self._response_format(
            body["response_format"]["json_schema"]["schema"])
        return True

    def _forward(self, response: httpx.Response, events: queue.Queue,
                 done: threading.Event) -> None:
        for line in response.iter_lines():
            if done.is_set():
                return
            if not line.startswith("data:"):
                continue
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            choice = (event.get("choices") or [{}])[0]
            content = (choice.get("delta") or {}).get("content") or ""
            events.put((content, choice.get("finish_reason"), event.get("usage")))

    def close(self) -> None:
        self._client.close()


def _estimate(text: str) -> int:
    return len(text.encode("utf-8")) // BYTES_PER_TOKEN_ESTIMATE + 1


def _server_error(response: httpx.Response, base_url: str) -> str:
    if response.status_code in (401, 403):
        return (f"The model server at {base_url} refused the API key (HTTP "
                f"{response.status_code}); pass --api-key or set STORYTELLER_API_KEY.")
    if response.status_code == 404:
        return (f"The server at {base_url} has no such model or route (HTTP 404); check "
                "--model against `GET /v1/models` and that --base-url ends in /v1.")
    detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return (f"The model server at {base_url} answered HTTP {response.status_code}: {detail}; "
            "check its log, or lower --max-tokens if the prompt was too long.")
