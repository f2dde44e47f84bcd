"""Model providers by settings: offline by default; OpenAI, Azure OpenAI and OpenAI-compatible endpoints built
from settings; the base-URL path proven end to end against a small Chat Completions server on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from console.core.agents.offline_model import OfflineModel
from console.core.agents.providers import ModelResolver, calculator_model, resolve_provider
from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.localcloud.serve import ThreadedServer
from tests.agents.helpers import Recorder, agent, config


def test_offline_is_the_default_and_explicit_choice_wins() -> None:
    assert resolve_provider(Settings()) == "offline"
    assert resolve_provider(Settings(openai_base_url="http://127.0.0.1:11434/v1")) == "openai-compatible"
    assert resolve_provider(Settings(azure_openai_endpoint="https://x.openai.azure.com")) == "azure-openai"
    assert resolve_provider(Settings(openai_api_key="sk-test")) == "openai"  # type: ignore[arg-type]
    assert resolve_provider(Settings(openai_api_key="sk-test", model_provider="offline")) == "offline"  # type: ignore[arg-type]
    choice = ModelResolver(Settings()).for_config("gpt-4o-mini")
    assert isinstance(choice.model, OfflineModel) and choice.label == "offline-demo (offline)"


def test_real_providers_are_constructed_from_settings() -> None:
    openai = ModelResolver(Settings(openai_api_key="sk-test")).for_config("gpt-4o-mini")  # type: ignore[arg-type]
    assert isinstance(openai.model, OpenAIResponsesModel) and openai.label == "gpt-4o-mini (openai)"
    azure = ModelResolver(
        Settings(azure_openai_endpoint="https://example.openai.azure.com", azure_openai_api_key="k")  # type: ignore[arg-type]
    ).for_config("my-deployment")
    assert (
        isinstance(azure.model, OpenAIChatCompletionsModel) and azure.label == "my-deployment (azure-openai)"
    )
    assert type(azure.model._client).__name__ == "AsyncAzureOpenAI"
    local = ModelResolver(Settings(openai_base_url="http://127.0.0.1:11434/v1", model="llama3.2")).for_config(
        "gpt-4o-mini"
    )
    assert (
        isinstance(local.model, OpenAIChatCompletionsModel) and local.label == "llama3.2 (openai-compatible)"
    )


def test_missing_provider_settings_are_clear_errors() -> None:
    with pytest.raises(UserError, match="needs an endpoint and an API key"):
        ModelResolver(Settings(model_provider="azure-openai")).for_config("m")
    with pytest.raises(UserError, match="needs an API key"):
        ModelResolver(Settings(model_provider="openai")).for_config("m")
    with pytest.raises(UserError, match="needs a base URL"):
        ModelResolver(Settings(model_provider="openai-compatible")).for_config("m")


class ChatServer:
    """Speaks the streaming Chat Completions protocol; answers with a fixed sentence and records requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []

        async def completions(request: Request) -> StreamingResponse:
            body = await request.json()
            self.requests.append(body)
            self.auth.append(request.headers.get("authorization"))

            async def chunks() -> AsyncIterator[bytes]:
                base = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": body["model"],
                }
                for piece in ("Hello from ", "the local ", "endpoint."):
                    chunk = {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": piece},
                                "finish_reason": None,
                            }
                        ],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                done = {
                    **base,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
                }
                yield f"data: {json.dumps(done)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")

        self.server = ThreadedServer(
            Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])]), name="chat"
        )


@pytest.fixture(scope="module")
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    server.server.start()
    try:
        yield server
    finally:
        server.server.stop()


async def test_openai_compatible_endpoint_end_to_end(chat_server: ChatServer, tmp_path: Path) -> None:
    settings = Settings(openai_base_url=f"{chat_server.server.base_url}/v1", model="tiny-local")
    bus = EventBus()
    rec = Recorder(bus)
    configs = {"solo": config("solo", agent("Solo", "Answer briefly.", tools=["get_current_time"]))}
    runner = AgentRunner(settings=settings, configs=configs, bus=bus)
    assert runner.model_label == "tiny-local (openai-compatible)"
    result = await runner.run_turn("say hello")
    assert result.error is None and result.output == "Hello from the local endpoint."
    request = chat_server.requests[-1]
    assert request["model"] == "tiny-local" and request["stream"] is True
    assert request["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert [t["function"]["name"] for t in request["tools"]] == ["get_current_time"]
    assert chat_server.auth[-1] == "Bearer unused"  # no key configured: a placeholder, never a real secret
    (called,) = rec.of("model_called")
    assert (called.model, called.provider, called.input_tokens, called.output_tokens) == (
        "tiny-local",
        "openai-compatible",
        11,
        5,
    )
    assert "".join(e.delta for e in rec.of("text_delta")) == result.output


def test_the_calculator_agent_gets_the_model_the_settings_choose() -> None:
    assert isinstance(calculator_model(Settings()), OfflineModel)
    compatible = calculator_model(Settings(openai_base_url="http://127.0.0.1:11434/v1"))
    assert isinstance(compatible, OpenAIChatCompletionsModel) and compatible.model == "gpt-4o-mini"
    overridden = calculator_model(Settings(openai_base_url="http://127.0.0.1:11434/v1", model="llama3.2"))
    assert isinstance(overridden, OpenAIChatCompletionsModel) and overridden.model == "llama3.2"
