"""Which model answers: chosen by settings, offline by default.

* ``offline`` (default when nothing is configured): the offline demo model, no network, no key.
* ``openai``: OpenAI's Responses API (``OPENAI_API_KEY``).
* ``azure-openai``: Azure OpenAI (``OBO_CONSOLE_AZURE_OPENAI_ENDPOINT`` / ``..._API_KEY`` / ``..._API_VERSION``)
  through Chat Completions, which every Azure deployment serves; the config's model is the deployment name.
* ``openai-compatible``: any endpoint speaking Chat Completions (Ollama, vLLM) at ``OBO_CONSOLE_OPENAI_BASE_URL``.

Without an explicit ``OBO_CONSOLE_MODEL_PROVIDER``: a base URL means openai-compatible, an Azure endpoint means
azure-openai, an OpenAI key means openai, and nothing means offline. ``OBO_CONSOLE_MODEL`` overrides every
config's model name (e.g. ``llama3.2`` for all agents on Ollama).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents import Model, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncAzureOpenAI, AsyncOpenAI

from console.core.agents.offline_model import OFFLINE_MODEL_NAME, OfflineModel
from console.core.settings import Settings
from mcp_server.errors import UserError


def resolve_provider(settings: Settings) -> str:
    if settings.model_provider:
        return settings.model_provider
    if settings.openai_base_url:
        return "openai-compatible"
    if settings.azure_openai_endpoint:
        return "azure-openai"
    if settings.openai_api_key:
        return "openai"
    return "offline"


@dataclass
class ModelChoice:
    """A model instance plus how the console names it ("offline-demo (offline)", "gpt-4o-mini (openai)")."""

    model: Model
    name: str
    provider: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.provider})"


# The calculator agent's model name, for providers that need one (OBO_CONSOLE_MODEL overrides it, as for configs).
CALCULATOR_MODEL = "gpt-4o-mini"


def calculator_model(settings: Settings) -> Model:
    """The model the local stack's calculator agent runs on: the provider ``settings`` choose (offline by default).
    The server does not pick models; ``obo-console server`` hands it this one."""
    return ModelResolver(settings).for_config(CALCULATOR_MODEL).model


@dataclass
class ModelResolver:
    """Hands each agent its model. One client per resolver (per console process), shared by its agents."""

    settings: Settings
    provider: str = field(init=False)
    _client: Any = field(default=None, init=False, repr=False)
    _offline: OfflineModel | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.provider = resolve_provider(self.settings)

    def for_config(self, config_model: str) -> ModelChoice:
        if self.provider == "offline":
            if self._offline is None:
                self._offline = OfflineModel()
            return ModelChoice(self._offline, OFFLINE_MODEL_NAME, "offline")
        name = self.settings.model or config_model

        client = self._get_client()
        if self.provider == "openai":
            return ModelChoice(OpenAIResponsesModel(model=name, openai_client=client), name, "openai")
        return ModelChoice(OpenAIChatCompletionsModel(model=name, openai_client=client), name, self.provider)

    def _get_client(self) -> Any:
        if self._client is not None:
            return self._client

        s = self.settings
        if self.provider == "openai":
            if s.openai_api_key is None:
                raise UserError(
                    "The openai model provider needs an API key.",
                    hint="Set OPENAI_API_KEY, or unset OBO_CONSOLE_MODEL_PROVIDER to use the offline demo model.",
                )
            self._client = AsyncOpenAI(
                api_key=s.openai_api_key.get_secret_value(), base_url=s.openai_base_url
            )
        elif self.provider == "azure-openai":
            key = s.azure_openai_api_key or s.openai_api_key
            if not s.azure_openai_endpoint or key is None:
                raise UserError(
                    "The azure-openai model provider needs an endpoint and an API key.",
                    hint="Set OBO_CONSOLE_AZURE_OPENAI_ENDPOINT and OBO_CONSOLE_AZURE_OPENAI_API_KEY.",
                )
            self._client = AsyncAzureOpenAI(
                api_key=key.get_secret_value(),
                azure_endpoint=s.azure_openai_endpoint,
                api_version=s.azure_openai_api_version,
            )
        elif self.provider == "openai-compatible":
            if not s.openai_base_url:
                raise UserError(
                    "The openai-compatible model provider needs a base URL.",
                    hint="Set OBO_CONSOLE_OPENAI_BASE_URL, e.g. http://127.0.0.1:11434/v1 for Ollama.",
                )
            # Local servers (Ollama, vLLM) accept any key; the client insists on one.
            api_key = s.openai_api_key.get_secret_value() if s.openai_api_key else "unused"
            self._client = AsyncOpenAI(api_key=api_key, base_url=s.openai_base_url)
        else:
            raise UserError(
                f"Unknown model provider {self.provider!r}.",
                hint="Use offline, openai, azure-openai or openai-compatible.",
            )
        return self._client
