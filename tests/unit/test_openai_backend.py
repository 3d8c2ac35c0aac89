"""The OpenAI-compatible backend's talk with a server, against httpx.MockTransport: one
retry policy, refused keys, the json_schema dialect fallback, and clear one-line errors.
(tests/model/test_backends.py plays it against a real llama_cpp.server.)"""

import json
import threading

import httpx
import pytest

from storyteller.config import Settings
from storyteller.errors import ModelError
from storyteller.generation import GenerationStats, Message, SamplingOptions
from storyteller.memory.chroma_server import free_port
from storyteller.narrator import openai
from storyteller.narrator.openai import OpenAINarrator
from storyteller.narrator.registry import load_narrator

BASE = "http://server.test/v1"
MODELS = {"data": [{"id": "tiny", "meta": {"n_ctx_train": 1024}}]}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(openai, "RETRY_BACKOFF_SECONDS", 0.0)


def sse(*texts):
    events = [{"choices": [{"delta": {"content": text}, "finish_reason": None}]}
              for text in texts]
    events.append({"choices": [{"delta": {}, "finish_reason": "stop"}]})
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"


class Server:
    """A scripted server: answers per route from lists (the last answer repeats) and
    keeps every request it got."""

    def __init__(self, **answers):
        self.answers = {"/v1/models": [httpx.Response(200, json=MODELS)], **answers}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers.get(request.url.path)
        if queue is None:
            return httpx.Response(404)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def hits(self, path):
        return [r for r in self.requests if r.url.path == path]


def narrator(server, retries=2):
    return OpenAINarrator(BASE, retries=retries, transport=httpx.MockTransport(server))


def story(narrator, schema=None):
    prompt = narrator.render([Message.of("user", "look", "input")])
    stats = GenerationStats()
    text = "".join(narrator.stream(prompt, SamplingOptions(max_tokens=8), threading.Event(),
                                   stats, schema))
    return text, stats


def test_a_busy_server_is_tried_again_then_answers():
    server = Server(**{"/v1/chat/completions": [
        httpx.Response(503), httpx.Response(502),
        httpx.Response(200, text=sse("A door ", "creaks."))]})
    text, stats = story(narrator(server))
    assert text == "A door creaks." and stats.stopped_by == "eos"
    assert len(server.hits("/v1/chat/completions")) == 3


def test_retries_are_bounded_and_the_last_failure_is_one_line():
    server = Server(**{"/v1/chat/completions": [httpx.Response(503, text="overloaded")]})
    with pytest.raises(ModelError) as error:
        story(narrator(server, retries=1))
    assert len(server.hits("/v1/chat/completions")) == 2  # one try and one retry
    assert "HTTP 503: overloaded" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_one_clear_line_and_not_retried(status):
    server = Server(**{"/v1/models": [httpx.Response(status)]})
    with pytest.raises(ModelError, match=f"refused the API key \\(HTTP {status}\\).*--api-key"):
        narrator(server)
    assert len(server.hits("/v1/models")) == 1


def test_a_refused_key_while_narrating_is_one_clear_line():
    server = Server(**{"/v1/chat/completions": [httpx.Response(401)]})
    with pytest.raises(ModelError, match="refused the API key"):
        story(narrator(server))
    assert len(server.hits("/v1/chat/completions")) == 1


def test_a_server_without_json_schema_gets_json_object_from_then_on():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    refused = httpx.Response(400, text="unknown response_format type: json_schema")
    server = Server(**{"/v1/chat/completions": [
        refused, httpx.Response(200, text=sse('{"name": "Ada"}'))]})
    backend = narrator(server)
    assert story(backend, schema)[0] == '{"name": "Ada"}'
    story(backend, schema)
    formats = [json.loads(r.content)["response_format"]
               for r in server.hits("/v1/chat/completions")]
    assert formats[0]["type"] == "json_schema"
    assert formats[1:] == [{"type": "json_object", "schema": schema}] * 2


def test_another_client_error_is_not_mistaken_for_the_dialect():
    server = Server(**{"/v1/chat/completions": [httpx.Response(400, text="bad request")]})
    with pytest.raises(ModelError, match="HTTP 400: bad request"):
        story(narrator(server), {"type": "object"})
    assert len(server.hits("/v1/chat/completions")) == 1


def test_the_context_size_comes_from_the_server_and_tokens_from_its_tokenizer():
    server = Server(**{"/extras/tokenize": [httpx.Response(200, json={"tokens": [1, 2, 3]})]})
    backend = narrator(server)
    assert backend.n_ctx == 1024 and backend.model_id == "tiny"
    assert backend.count_tokens("three words here") == 3


def test_an_unreachable_server_is_one_clear_line():
    settings = Settings(base_url=f"http://127.0.0.1:{free_port()}/v1", request_retries=0)
    with pytest.raises(ModelError, match="Cannot reach the model server .*--base-url"):
        load_narrator(settings)
