"""The offline demo model's decision procedure: which tool, agent-as-tool or handoff to call, with which
arguments, or what to say. Fixed rules over what the SDK hands every model (the user's words, the tools' names,
descriptions and schemas, the conversation so far), so the same input always gives the same decision.

* Each candidate is scored by word overlap with the user's message (names weigh most, rarer words more; words
  under a negation do not count; everyday words count for their concept at half weight; a name the user picks
  from an earlier answer counts for the tool that listed it), and the best is called — several tools when each
  covers a different word of the request.
* Arguments come from the message (see ``offline_arguments``); required values it cannot fill are asked for, and
  later messages continue the request until it has them. What it awaits (``Awaiting``: the tool, the value asked
  for, the values so far) is the model's own state, recovered by deciding its earlier replies again — never by
  reading them — so a conversation resumed from its saved messages continues where it was.
* The answer is composed from the tool outputs (see ``offline_answers``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import Handoff, Tool
from agents.items import TResponseInputItem

from console.core.agents.offline_answers import (
    OFFLINE_INTRO,
    capabilities,
    compose,
    declined,
    first_sentence,
    handoff_target,
    join,
    labels_in,
    names_in,
)
from console.core.agents.offline_arguments import (
    LOCATION_PARAMS,
    QUERY_PARAMS,
    bare_value,
    extract,
    is_expression_param,
    optional,
)
from console.core.agents.offline_words import CONCEPT_WEIGHT, Said, humanize, read_message, same, words


@dataclass
class Candidate:
    """One thing the model may call: a function tool (incl. agents-as-tools and MCP tools) or a handoff."""

    name: str
    description: str
    schema: dict[str, Any]
    is_handoff: bool = False
    target: str | None = None  # the handoff's agent name
    fields: list[tuple[float, set[str]]] = field(default_factory=list)  # (weight, stems)

    def __post_init__(self) -> None:
        params = self.schema.get("properties", {}) if isinstance(self.schema, dict) else {}
        param_words = set(words(" ".join(params)))
        param_desc = set(
            words(" ".join(str(p.get("description", "")) for p in params.values() if isinstance(p, dict)))
        )
        self.fields = [
            (3.0, set(words(self.name)) | set(words(self.target or ""))),
            (1.0, set(words(self.description))),
            (0.5, param_words | param_desc),
        ]

    @property
    def vocabulary(self) -> set[str]:
        return set().union(*(stems for _, stems in self.fields))

    def matches(self, stem_: str) -> float:
        return max((w for w, stems in self.fields if any(same(stem_, s) for s in stems)), default=0.0)

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required", [])) if isinstance(self.schema, dict) else []

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props = self.schema.get("properties", {}) if isinstance(self.schema, dict) else {}
        return {k: v for k, v in props.items() if isinstance(v, dict)}


def candidates_from(tools: Iterable[Tool], handoffs: Iterable[Handoff]) -> list[Candidate]:
    out: list[Candidate] = []
    for tool in tools:
        schema = getattr(tool, "params_json_schema", None)
        if schema is None:  # hosted tools (web search) cannot be run by this model
            continue
        out.append(Candidate(tool.name, getattr(tool, "description", "") or "", schema))
    for handoff in handoffs:
        out.append(
            Candidate(
                handoff.tool_name,
                handoff.tool_description or "",
                handoff.input_json_schema or {},
                is_handoff=True,
                target=handoff.agent_name,
            )
        )
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        return str(output.get("text", json.dumps(output)))
    if isinstance(output, list):
        return "\n".join(_output_text(part) for part in output)
    return str(output)


@dataclass
class Conversation:
    """The input the SDK gave the model, read back as turns."""

    user_messages: list[str]  # all of them, oldest first
    last_user_index: int  # the position of the latest user message among the items
    calls: dict[str, dict[str, Any]]  # call_id -> function_call item, this turn
    outputs: list[tuple[str, str, str]]  # (call_id, tool name, output text), this turn, in order
    earlier_outputs: list[tuple[str, str]] = field(
        default_factory=list
    )  # (tool name, output text), past turns
    replies: list[tuple[int, str]] = field(default_factory=list)  # (position, text) of each assistant message

    @property
    def message(self) -> str:
        return self.user_messages[-1] if self.user_messages else ""

    @classmethod
    def read(cls, items: str | list[TResponseInputItem] | list[dict[str, Any]]) -> Conversation:
        if isinstance(items, str):
            return cls([items], 0, {}, [])
        datas = item_dicts(items)
        users: list[str] = []
        replies: list[tuple[int, str]] = []
        last_user = -1
        for index, data in enumerate(datas):
            role, kind = data.get("role"), data.get("type")
            if role == "user" and kind in (None, "message"):
                users.append(_text_of(data.get("content")))
                last_user = index
            elif role == "assistant" and kind in (None, "message"):
                replies.append((index, _text_of(data.get("content"))))
        names: dict[str, str] = {}  # call_id -> tool name
        calls: dict[str, dict[str, Any]] = {}
        outputs: list[tuple[str, str, str]] = []
        earlier: list[tuple[str, str]] = []
        for index, data in enumerate(datas):
            call_id = str(data.get("call_id"))
            if data.get("type") == "function_call":
                names[call_id] = str(data.get("name", ""))
                if index > last_user:
                    calls[call_id] = data
            elif data.get("type") == "function_call_output":
                text = _output_text(data.get("output"))
                if index > last_user:
                    outputs.append((call_id, names.get(call_id, ""), text))
                else:
                    earlier.append((names.get(call_id, ""), text))
        return cls(users, last_user, calls, outputs, earlier, replies)


def item_dicts(items: Sequence[Any]) -> list[dict[str, Any]]:
    """The SDK's input items as plain dicts (they arrive as dicts or as pydantic models)."""
    return [item if isinstance(item, dict) else getattr(item, "model_dump", dict)() for item in items]


@dataclass(frozen=True)
class Awaiting:
    """A request this model could not run yet: the tool, the value it asked for, the user message (its index
    among the user messages) the request started with — what the next user message continues — and the values
    it has so far (a bare reply such as "Bob Smith" is known only from having been asked for)."""

    tool: str
    param: str
    since: int
    known: tuple[tuple[str, Any], ...] = ()


@dataclass
class Decision:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    text: str | None = None
    awaiting: Awaiting | None = None  # set when the text asks for a value: the model's state after this reply


class ReplyMemory:
    """The state each reply of this model left, by conversation prefix (a digest of the agent's instructions and
    tools and of every item up to and including the reply). Bounded: the oldest entries go first."""

    def __init__(self, limit: int = 4096) -> None:
        self._states: dict[str, Awaiting | None] = {}
        self._limit = limit

    @staticmethod
    def keys(instructions: str | None, cands: list[Candidate], datas: list[dict[str, Any]]) -> list[str]:
        """The key of each prefix ``datas[: i + 1]``, in one pass."""
        running = hashlib.sha256(
            json.dumps(
                [instructions, [(c.name, c.description, c.schema) for c in cands]],
                sort_keys=True,
                default=str,
            ).encode()
        )
        keys = []
        for data in datas:
            running.update(json.dumps(data, sort_keys=True, default=str).encode())
            keys.append(running.copy().hexdigest())
        return keys

    def __contains__(self, key: str) -> bool:
        return key in self._states

    def __getitem__(self, key: str) -> Awaiting | None:
        return self._states[key]

    def __setitem__(self, key: str, state: Awaiting | None) -> None:
        if len(self._states) >= self._limit:
            self._states.pop(next(iter(self._states)))
        self._states[key] = state


class OfflineDecider:
    """The decision procedure, separate from the SDK plumbing so it can be read (and tested) on its own."""

    threshold = 0.5

    def __init__(self) -> None:
        self._memory = ReplyMemory()

    def decide(
        self, instructions: str | None, items: str | list[TResponseInputItem], cands: list[Candidate]
    ) -> Decision:
        if isinstance(items, str):
            return self._decide(instructions, Conversation.read(items), cands, None)
        datas = item_dicts(items)
        convo = Conversation.read(datas)
        return self._decide(instructions, convo, cands, self.awaited(instructions, datas, convo, cands))

    def awaited(
        self,
        instructions: str | None,
        datas: list[dict[str, Any]],
        convo: Conversation,
        cands: list[Candidate],
    ) -> Awaiting | None:
        """What this model awaited when the user spoke last: the state its last reply left.

        The state is the model's own: each of its replies is decided again from the conversation before it (the
        decision is deterministic) and kept only when it is exactly what was said, so it never reads its words
        back, and a conversation resumed from its saved messages alone gives the same state. Remembered per
        conversation prefix, so each reply is decided again once."""
        state: Awaiting | None = None
        states: list[tuple[int, Awaiting | None]] = []  # (position, state after that reply)
        keys = self._memory.keys(instructions, cands, datas)
        for position, text in convo.replies:
            if position > convo.last_user_index:
                break
            key = keys[position]
            if key in self._memory:
                state = self._memory[key]
            else:
                before = Conversation.read(datas[:position])
                pending = next((s for p, s in reversed(states) if p < before.last_user_index), None)
                decision = self._decide(instructions, before, cands, pending)
                state = decision.awaiting if decision.text == text else None
                self._memory[key] = state
            states.append((position, state))
        return next((s for p, s in reversed(states) if p < convo.last_user_index), None)

    def _decide(
        self, instructions: str | None, convo: Conversation, cands: list[Candidate], awaiting: Awaiting | None
    ) -> Decision:
        by_name = {c.name: c for c in cands}
        own_outputs = [o for o in convo.outputs if o[1] in by_name and not by_name[o[1]].is_handoff]
        handed_off = [
            c for c in convo.calls.values() if c.get("name") not in by_name or by_name[c["name"]].is_handoff
        ]
        if own_outputs:
            return Decision(text=self._style(instructions, compose(own_outputs, convo.message)))
        if handed_off:  # at most one handoff per turn: no ping-pong
            cands = [c for c in cands if not c.is_handoff]
        said = read_message(convo.message)
        scored = self._score(convo, said, cands)
        refused = [c for c in cands if any(c.matches(w) >= 1.0 for w in said.negated)]
        pending = {c.name: c for c in cands}.get(awaiting.tool) if awaiting is not None else None
        # A pending request is dropped only when a negated word names its tool ("I don't want to run a simulation").
        if (
            awaiting is not None
            and pending is not None
            and not any(pending.matches(w) >= 3.0 for w in said.negated)
        ):
            args, missing, strong = self._fill_pending(pending, convo, awaiting)
            rival = next((sc for c, sc in scored if c is not pending), None)
            other_wins = rival is not None and rival >= self.threshold
            if strong or not other_wins:
                return self._call_or_ask(pending, args, missing, awaiting.since)
        if not scored or scored[0][1] < self.threshold:
            if refused:  # the request only says what not to do
                return Decision(text=self._style(instructions, self._decline(refused, cands)))
            search = self._search_for(convo.message, cands)
            if search is not None:
                return search
            return Decision(text=self._style(instructions, self._introduce(cands, handed_off, convo)))
        best = scored[0][0]
        if best.is_handoff:
            return Decision(calls=[(best.name, {})])
        chosen = self._cover(said, [c for c, s in scored if s >= self.threshold and not c.is_handoff])
        decisions = []
        for cand in chosen:
            args, missing = self._fill(cand, convo.message)
            if missing:
                return self._call_or_ask(cand, args, missing, len(convo.user_messages) - 1)
            decisions.append((cand.name, args))
        return Decision(calls=decisions)

    # -- scoring

    def _score(
        self, convo: Conversation, said: Said, cands: list[Candidate]
    ) -> list[tuple[Candidate, float]]:
        total = max(len(cands), 1)
        # A name the user picks from an earlier answer counts like the listing tool's own name.
        listed_by = {
            tool
            for tool, text in convo.earlier_outputs
            for label in labels_in(text)
            if names_in(convo.message, label)
        }
        scored: list[tuple[Candidate, float]] = []
        for cand in cands:
            score = 0.0
            for stems, factor in ((said.words, 1.0), (said.concepts, CONCEPT_WEIGHT)):
                for word in stems:
                    weight = cand.matches(word)
                    if weight:
                        df = sum(1 for c in cands if c.matches(word))
                        score += factor * weight * math.log(1 + total / df)
            if cand.name in listed_by:
                score += 3.0 * math.log(1 + total)
            # Evidence for a required parameter counts too ("12 * 7" for an expression parameter).
            for param in cand.required:
                schema = cand.properties.get(param, {})
                relevant = is_expression_param(param) or param.lower() in LOCATION_PARAMS
                if relevant and extract(param, schema, convo.message, [], cand.vocabulary):
                    score += 1.0
            scored.append((cand, score))
        scored.sort(key=lambda pair: -pair[1])  # stable: ties keep the agent's own order
        return [pair for pair in scored if pair[1] > 0]

    def _search_for(self, message: str, cands: list[Candidate]) -> Decision | None:
        """A request no tool's words match goes to the one search tool, if there is exactly one, with the user's
        words as the query ("what does the travel expense policy say?" to a documents search)."""
        searches = [
            c for c in cands if not c.is_handoff and any(p.lower() in QUERY_PARAMS for p in c.properties)
        ]
        if len(searches) != 1:
            return None
        args, missing = self._fill(searches[0], message)
        query = next((args.get(p) for p in searches[0].properties if p.lower() in QUERY_PARAMS), None)
        if missing or not query or query == searches[0].properties.get("query", {}).get("default"):
            return None
        return Decision(calls=[(searches[0].name, args)])

    def _cover(self, said: Said, ranked: list[Candidate]) -> list[Candidate]:
        """Several tools when each covers a name word of the request (the user's own words) the better ones do not."""
        chosen: list[Candidate] = []
        covered: set[str] = set()
        for cand in ranked:
            name_hits = {w for w in said.words if any(same(w, s) for s in cand.fields[0][1])}
            if not chosen or (name_hits and not name_hits <= covered):
                chosen.append(cand)
                covered |= name_hits
        return chosen[:4]

    # -- arguments

    def _fill(self, cand: Candidate, *messages: str) -> tuple[dict[str, Any], list[str]]:
        args: dict[str, Any] = {}
        props = cand.properties
        for param, schema in props.items():
            for message in reversed(messages):  # the newest mention wins
                value = extract(param, schema, message, [p for p in props if p != param], cand.vocabulary)
                if value is not None:
                    args[param] = value
                    break
            if param not in args and "default" in schema and param in cand.required:
                args[param] = schema["default"]
        missing = [p for p in cand.required if p not in args]
        # Strict schemas list every property as required; optional ones (nullable / defaulted) need no asking.
        missing = [p for p in missing if not optional(props.get(p, {}))]
        for param in cand.required:
            if param not in args and optional(props.get(param, {})):
                args[param] = props[param].get("default")
        return args, missing

    def _fill_pending(
        self, cand: Candidate, convo: Conversation, awaiting: Awaiting
    ) -> tuple[dict[str, Any], list[str], bool]:
        """Arguments from every user message since the request that needed them; a bare reply ("Bob Smith") is
        the value this model asked for. ``strong``: the latest message gave a value of its own."""
        relevant = convo.user_messages[awaiting.since :]
        before, _ = self._fill(cand, *relevant[:-1]) if len(relevant) > 1 else ({}, [])
        args, missing = self._fill(cand, *relevant)
        strong = any(k not in before or before[k] != v for k, v in args.items())
        for param, value in awaiting.known:  # what the messages no longer say by themselves (bare replies)
            if args.get(param) in (None, ""):
                args[param] = value
                if param in missing:
                    missing.remove(param)
        if not strong and awaiting.param in missing and awaiting.param in cand.properties:
            value = bare_value(awaiting.param, cand.properties[awaiting.param], relevant[-1])
            if value is not None:
                args[awaiting.param] = value
                missing.remove(awaiting.param)
        return args, missing, strong

    def _call_or_ask(self, cand: Candidate, args: dict[str, Any], missing: list[str], since: int) -> Decision:
        """Call ``cand``, or ask for its first missing value, awaiting it (``since``: the request's first message)."""
        if not missing:
            return Decision(calls=[(cand.name, args)])
        have = ", ".join(f"{humanize(k)}: {v}" for k, v in args.items() if v not in (None, ""))
        needed = join([humanize(p) for p in missing])
        text = f"To run `{cand.name}` I still need your {needed}."
        if have:
            text += f" So far I have {have}."
        text += f" What is your {humanize(missing[0])}?"
        known = tuple((k, v) for k, v in args.items() if v not in (None, ""))
        return Decision(text=text, awaiting=Awaiting(cand.name, missing[0], since, known))

    # -- answers

    def _introduce(
        self, cands: list[Candidate], handed_off: list[dict[str, Any]], convo: Conversation
    ) -> str:
        head = OFFLINE_INTRO
        for call_id in (c.get("call_id") for c in handed_off):
            out = next((o for o in convo.outputs if o[0] == call_id), None)
            target = handoff_target(out[2]) if out else None
            if target:
                head = f"You are now talking to {target}."
        if not cands:
            return head + " I have no tools available right now, so I cannot look that up."
        return head + capabilities([first_sentence(c.description) or humanize(c.name) for c in cands])

    @staticmethod
    def _decline(refused: list[Candidate], cands: list[Candidate]) -> str:
        actions = [
            f"hand you over to {c.target}" if c.is_handoff and c.target else f"call `{c.name}`"
            for c in refused
        ]
        others = [first_sentence(c.description) or humanize(c.name) for c in cands if c not in refused]
        return declined(actions, others)

    @staticmethod
    def _style(instructions: str | None, text: str) -> str:
        """The one thing read from the agent's instructions: "lower case" (or "lowercase") lower-cases the
        answer."""
        return text.lower() if instructions and re.search(r"\blower ?case\b", instructions, re.I) else text
