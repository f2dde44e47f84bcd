"""The offline demo model: a real ``agents.Model`` that needs no network and no key.

A deterministic stand-in for a language model, not one: fixed rules decide, from what the SDK hands every model
(the user's words, the tools' and handoffs' names, descriptions and parameter schemas, the conversation so far),
which tool, agent-as-tool or handoff to call with which arguments, and compose the answer from the tool outputs.
The same conversation always gets the same answer, and its answers say that it is the offline demo model.

* ``offline_words``: stems, stop words, negation, everyday concepts ("rain" is weather);
* ``offline_arithmetic``: arithmetic in words ("12 times 7" -> "12 * 7");
* ``offline_arguments``: tool arguments from the message (a city, a number, an expression, a query);
* ``offline_decider``: the decision procedure (scoring, several tools, asking for missing values);
* ``offline_answers``: answers from tool outputs (lists with counts in agreement, a named document's description);
* this module: the SDK plumbing (a response, or a stream of text deltas).

No tool, agent or config is named here: choices follow the names, descriptions and parameter schemas the
SDK hands the model, so renaming a tool or rewriting a description changes them. The built-in vocabulary does
lean on the shipped tools (docs/agents.md, "What it keys on"): the parameter names it can fill (a place
for ``city``/``location``, the user's words for ``query``/``input``, arithmetic for ``expression``, and how
people state a ``name``, an ``address`` or an ``income``: ``run_simulation``'s parameters), everyday words for
weather, temperature, forecast and documents, and one phrase in the agent's instructions: "lower case"
lower-cases its answers. Other parameters are filled only from "<parameter> is <value>", an enum value the
message names, or the user's reply when asked.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    Usage,
)
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from console.core.agents.offline_arguments import extract, parse_number
from console.core.agents.offline_decider import (
    Candidate,
    Conversation,
    Decision,
    OfflineDecider,
    candidates_from,
)
from console.core.agents.offline_words import humanize, stem, words

__all__ = [
    "OFFLINE_MODEL_NAME", "Candidate", "Conversation", "Decision", "OfflineDecider", "OfflineModel",
    "candidates_from", "extract", "humanize", "parse_number", "stem", "words",
]  # fmt: skip

OFFLINE_MODEL_NAME = "offline-demo"


# ---------------------------------------------------------------------------------------------- the SDK Model


def _message(text: str, item_id: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=item_id,
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])],
    )


def _chunks(text: str, words_per_chunk: int = 4) -> list[str]:
    pieces = re.findall(r"\S+\s*|\s+", text) or [text]
    return ["".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)]


class OfflineModel(Model):
    """Deterministic, offline, streaming. ``name`` is what the console shows as the answering model."""

    def __init__(self, name: str = OFFLINE_MODEL_NAME) -> None:
        self.name = name
        self._decider = OfflineDecider()
        self._ids = itertools.count(1)

    def _output(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
        handoffs: list[Handoff],
    ) -> tuple[list[TResponseOutputItem], Usage]:
        decision = self._decider.decide(system_instructions, input, candidates_from(tools, handoffs))
        n = next(self._ids)
        out: list[TResponseOutputItem] = []
        if decision.text is not None:
            out.append(_message(decision.text, f"msg_offline_{n}"))
        for index, (name, args) in enumerate(decision.calls):
            out.append(
                ResponseFunctionToolCall(
                    id=f"fc_offline_{n}_{index}",
                    call_id=f"call_offline_{n}_{index}_{id(self) % 10_000}",
                    type="function_call",
                    name=name,
                    arguments=json.dumps(args),
                    status="completed",
                )
            )
        said = len(json.dumps(input, default=str)) // 4 if not isinstance(input, str) else len(input) // 4
        wrote = sum(len(getattr(o, "arguments", "") or "") for o in out) // 4 + len(decision.text or "") // 4
        usage = Usage(
            requests=1, input_tokens=said, output_tokens=max(wrote, 1), total_tokens=said + max(wrote, 1)
        )
        return out, usage

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        out, usage = self._output(system_instructions, input, tools, handoffs)
        return ModelResponse(output=out, usage=usage, response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        out, usage = self._output(system_instructions, input, tools, handoffs)

        response = Response(
            id=f"resp_offline_{next(self._ids)}",
            created_at=0,
            model=self.name,
            object="response",
            output=out,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
            status="completed",
            top_p=None,
            usage=ResponseUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
                input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            ),
        )
        seq = itertools.count()
        yield ResponseCreatedEvent(
            type="response.created",
            sequence_number=next(seq),
            response=response.model_copy(update={"output": [], "status": "in_progress"}),
        )
        for index, item in enumerate(out):
            if isinstance(item, ResponseOutputMessage):
                first = item.content[0]
                assert isinstance(first, ResponseOutputText)  # the offline model writes text parts only
                text = first.text
                empty = item.model_copy(update={"content": [], "status": "in_progress"})
                yield ResponseOutputItemAddedEvent(
                    type="response.output_item.added",
                    item=empty,
                    output_index=index,
                    sequence_number=next(seq),
                )
                part = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
                yield ResponseContentPartAddedEvent(
                    type="response.content_part.added",
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    part=part,
                    sequence_number=next(seq),
                )
                for chunk in _chunks(text):
                    yield ResponseTextDeltaEvent(
                        type="response.output_text.delta",
                        item_id=item.id,
                        output_index=index,
                        content_index=0,
                        delta=chunk,
                        logprobs=[],
                        sequence_number=next(seq),
                    )
                yield ResponseTextDoneEvent(
                    type="response.output_text.done",
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                    sequence_number=next(seq),
                )
                yield ResponseContentPartDoneEvent(
                    type="response.content_part.done",
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    part=item.content[0],
                    sequence_number=next(seq),
                )
            else:
                yield ResponseOutputItemAddedEvent(
                    type="response.output_item.added",
                    item=item,
                    output_index=index,
                    sequence_number=next(seq),
                )
            yield ResponseOutputItemDoneEvent(
                type="response.output_item.done", item=item, output_index=index, sequence_number=next(seq)
            )
        yield ResponseCompletedEvent(type="response.completed", response=response, sequence_number=next(seq))
