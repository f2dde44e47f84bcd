"""The offline demo model: a real ``agents.Model`` that needs no network and no key.

It decides like a (very literal) model would, from what the SDK hands every model: the user's words, the
tools' and handoffs' names, descriptions and parameter schemas, and the conversation so far. It

* scores each tool, agent-as-tool and handoff by word overlap with the user's message (names weigh most,
  rarer words more), and calls the best — several tools when each covers a different word of the request;
* fills arguments from the message (a city for a location parameter, numbers for numeric ones, an
  arithmetic expression, the user's words for a query), and asks for required values it cannot fill,
  continuing across turns from the conversation history until it has them;
* composes its answer from the tool outputs, and streams it as text deltas.

Nothing here names a tool, agent or config: change their names and descriptions and the choices change.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelProvider,
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
)

OFFLINE_MODEL_NAME = "offline-demo"

# Words that say nothing about which tool to use.
_STOP = frozenset(
    [
        "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "from", "with",
        "about", "as", "into", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "doing",
        "have", "has", "had", "i", "me", "my", "mine", "you", "your", "yours", "we", "our", "us", "it", "its",
        "this", "that", "these", "those", "there", "here", "what", "whats", "which", "who", "whom", "how",
        "when", "where", "why", "can", "could", "would", "should", "will", "shall", "may", "might", "must",
        "please", "pls", "tell", "show", "give", "let", "lets", "get", "gets", "got", "use", "used", "using",
        "user", "users", "question", "questions", "answer", "answers", "information", "info", "help", "helpful",
        "assistant", "agent", "agents", "tool", "tools", "call", "calls", "transfer", "run", "want", "wants",
        "need", "needs", "like", "some", "any", "all", "just", "also", "now", "today", "know", "find", "look",
        "see", "hi", "hello", "hey", "thanks", "thank", "ok", "okay", "yes", "no", "not", "so", "very", "much",
        "more", "again", "still", "too"
    ]
)
# Words that ask for a search without narrowing it ("list everything I can read again").
_QUERY_FILLER = frozenset(
    [
        "list", "every", "everything", "all", "each", "available", "visible", "accessible", "access", "read",
        "see", "allowed", "permitted", "currently", "ones", "stuff", "things", "thing", "search", "searching",
        "query", "lookup"
    ]
)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?\s*[kK]?\b")
_MATH = re.compile(r"[-+(]*\s*\d[\d.,]*\s*(?:[-+*/x×÷^%]\s*[-+(]*\s*\d[\d.,]*\s*\)*\s*)+")
_CAPS = r"[A-Z][\w'’-]*(?:[ -](?:[A-Z][\w'’-]*|de|la|le|du|von|van))*"

# Parameter-name concepts: how a value for such a parameter shows up in what people write.
_LOCATION_PARAMS = {"city", "location", "place", "town", "region", "country", "where"}
_TEXT_PARAMS = {"input", "question", "prompt", "request", "message", "text", "task"}
_QUERY_PARAMS = {"query", "search", "q", "keywords", "terms", "topic"}
_EXPRESSION_PARAMS = {"expression", "formula", "calculation", "equation", "math", "expr"}
_CONCEPT_PATTERNS: dict[str, list[str]] = {
    "name": [rf"\b(?i:i am|i'm|im|call me|this is|name's)\s+(?P<v>{_CAPS})"],
    "address": [r"\b(?:i live|living|located|reside|residing|i'm based|based)\s+(?:at|in|on)\s+(?P<v>[^.;!?\n]+)"],
    "income": [r"\b(?:i earn|i make|earning|earn|make|salary of|income of)\s+(?P<v>\$?\d[\d,.]*\s*[kK]?)"],
}


def stem(word: str) -> str:
    word = word.lower().replace("'", "").replace("’", "")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + repl
    return word


def words(text: str) -> list[str]:
    """Content words of ``text``, split from snake_case and camelCase too, stemmed, stop words removed."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text.replace("_", " ").replace("-", " "))
    return [stem(t) for t in _TOKEN.findall(text) if t.lower() not in _STOP and not t[0].isdigit()]


def _same(a: str, b: str) -> bool:
    """Stems match when equal, or when they share a long prefix (simulation / simulator / simulate)."""
    if a == b:
        return True
    n = min(len(a), len(b))
    return n >= 5 and a[:5] == b[:5] and (a.startswith(b) or b.startswith(a) or n >= 6 and a[:6] == b[:6])


def humanize(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ").replace("-", " ")).strip()


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
        param_desc = set(words(" ".join(str(p.get("description", "")) for p in params.values() if isinstance(p, dict))))
        self.fields = [
            (3.0, set(words(self.name)) | set(words(self.target or ""))),
            (1.0, set(words(self.description))),
            (0.5, param_words | param_desc),
        ]

    @property
    def vocabulary(self) -> set[str]:
        return set().union(*(stems for _, stems in self.fields))

    def matches(self, stem_: str) -> float:
        return max((w for w, stems in self.fields if any(_same(stem_, s) for s in stems)), default=0.0)

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


# ---------------------------------------------------------------------------------------------- history


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
    assistant_messages: list[str]  # all of them, oldest first
    last_user_index: int
    calls: dict[str, dict[str, Any]]  # call_id -> function_call item, this turn
    outputs: list[tuple[str, str, str]]  # (call_id, tool name, output text), this turn, in order
    last_assistant_before_user: str | None  # what this model said right before the user's latest message

    @property
    def message(self) -> str:
        return self.user_messages[-1] if self.user_messages else ""

    @classmethod
    def read(cls, items: str | list[TResponseInputItem]) -> Conversation:
        if isinstance(items, str):
            return cls([items], [], 0, {}, [], None)
        users: list[str] = []
        assistants: list[str] = []
        last_user = -1
        last_assistant: str | None = None
        before_user: str | None = None
        for index, item in enumerate(items):
            data = item if isinstance(item, dict) else getattr(item, "model_dump", lambda: {})()
            role, kind = data.get("role"), data.get("type")
            if role == "user" and kind in (None, "message"):
                users.append(_text_of(data.get("content")))
                last_user = index
                before_user = last_assistant
            elif role == "assistant" and kind in (None, "message"):
                last_assistant = _text_of(data.get("content"))
                assistants.append(last_assistant)
        calls: dict[str, dict[str, Any]] = {}
        outputs: list[tuple[str, str, str]] = []
        for item in list(items)[last_user + 1 :]:
            data = item if isinstance(item, dict) else getattr(item, "model_dump", lambda: {})()
            if data.get("type") == "function_call":
                calls[str(data.get("call_id"))] = data
            elif data.get("type") == "function_call_output":
                call_id = str(data.get("call_id"))
                name = str(calls.get(call_id, {}).get("name", ""))
                outputs.append((call_id, name, _output_text(data.get("output"))))
        return cls(users, assistants, last_user, calls, outputs, before_user)


# ---------------------------------------------------------------------------------------------- arguments


def _clean(value: str) -> str:
    return value.strip().strip("\"'`").rstrip(" .,;!?").strip()


def parse_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    if not match:
        return None
    raw = match.group(0).replace("$", "").replace(",", "").replace(" ", "")
    scale = 1000.0 if raw[-1:] in "kK" else 1.0
    try:
        return float(raw.rstrip("kK")) * scale
    except ValueError:
        return None


def _number_value(value: float, schema: dict[str, Any]) -> int | float:
    return int(value) if schema.get("type") == "integer" or value.is_integer() else value


def _stop_lookahead(others: list[str]) -> str:
    alts = "|".join(re.escape(humanize(o)) for o in others if o)
    follow = rf"(?:,?\s+and)?\s*,?\s*(?:my\s+)?(?:{alts})\s*(?:is\b|was\b|:|=)" if alts else r"(?!)"
    return rf"(?=\s*(?:{follow}|[.;!?\n]|$))"


def extract(param: str, schema: dict[str, Any], message: str, others: list[str], vocabulary: set[str]) -> Any:
    """A value for ``param`` found in ``message`` with evidence, or None."""
    ptype = schema.get("type")
    if isinstance(ptype, list):
        ptype = next((t for t in ptype if t != "null"), None)
    label = humanize(param).lower()
    stop = _stop_lookahead(others)
    # "<param> is <value>" — the most direct evidence, for any parameter.
    explicit = re.search(rf"\b{re.escape(label)}\s*(?:is|:|=|was|of)\s+(?P<v>.+?){stop}", message, re.I | re.S)
    if "enum" in schema:
        lowered = message.lower()
        return next((v for v in schema["enum"] if str(v).lower() in lowered), None)
    if ptype in ("number", "integer"):
        for candidate in (explicit.group("v") if explicit else None, *_concept(param, message)):
            number = parse_number(candidate) if candidate else None
            if number is not None:
                return _number_value(number, schema)
        return None
    if ptype not in (None, "string"):
        return None
    if explicit:
        return _clean(explicit.group("v"))
    key = param.lower()
    if key in _EXPRESSION_PARAMS or any(key.endswith(s) for s in _EXPRESSION_PARAMS):
        match = _MATH.search(message)
        return re.sub(r"\s+", " ", match.group(0)).strip() if match else None
    if key in _LOCATION_PARAMS:
        match = re.search(rf"\b(?:in|for|at|of|near|around)\s+(?:the\s+)?(?P<v>{_CAPS})", message)
        if match:
            return _clean(match.group("v"))
        tail = [m.group(0) for m in re.finditer(_CAPS, message) if m.start() > 0 and not message[: m.start()].rstrip().endswith((".", "?", "!"))]
        return _clean(tail[-1]) if tail else None
    if key in _QUERY_PARAMS:
        rest = [
            w for w in _TOKEN.findall(message)
            if w.lower() not in _STOP and w.lower() not in _QUERY_FILLER and not any(_same(stem(w), v) for v in vocabulary)
        ]
        return " ".join(rest) if rest else None
    if key in _TEXT_PARAMS:
        return message.strip() or None
    found = _concept(param, message)
    return _clean(found[0]) if found else None


def _concept(param: str, message: str) -> list[str]:
    values: list[str] = []
    for concept, patterns in _CONCEPT_PATTERNS.items():
        if concept in param.lower():
            for pattern in patterns:
                values += [m.group("v") for m in re.finditer(pattern, message, re.I if concept != "name" else 0)]
    return values


def _bare_value(param: str, schema: dict[str, Any], reply: str) -> Any:
    """The user's whole reply as the value of the one parameter the model just asked for."""
    if schema.get("type") in ("number", "integer"):
        number = parse_number(reply)
        return _number_value(number, schema) if number is not None else None
    value = _clean(reply)
    return value or None


# ---------------------------------------------------------------------------------------------- decisions

_ASK = re.compile(r"`(?P<tool>[\w.-]+)`.*?What is your (?P<param>[\w ]+)\?", re.S)


@dataclass
class Decision:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    text: str | None = None


class OfflineDecider:
    """The decision procedure, separate from the SDK plumbing so it can be read (and tested) on its own."""

    threshold = 0.5

    def decide(self, instructions: str | None, items: str | list[TResponseInputItem], cands: list[Candidate]) -> Decision:
        convo = Conversation.read(items)
        by_name = {c.name: c for c in cands}
        own_outputs = [o for o in convo.outputs if o[1] in by_name and not by_name[o[1]].is_handoff]
        handed_off = [c for c in convo.calls.values() if c.get("name") not in by_name or by_name[c["name"]].is_handoff]
        if own_outputs:
            return Decision(text=self._style(instructions, self._compose(own_outputs, by_name)))
        if handed_off:  # at most one handoff per turn: no ping-pong
            cands = [c for c in cands if not c.is_handoff]
        scored = self._score(convo.message, cands)
        pending = self._pending(convo, {c.name: c for c in cands})
        if pending is not None:
            args, missing, strong, bare = self._fill_pending(pending, convo)
            best = next(((c, sc) for c, sc in scored if c is not pending), None)
            other_wins = best is not None and best[1] >= self.threshold
            if strong or not other_wins:
                return self._call_or_ask(pending, args, missing)
        if not scored or scored[0][1] < self.threshold:
            return Decision(text=self._style(instructions, self._introduce(cands, handed_off, convo)))
        best = scored[0][0]
        if best.is_handoff:
            return Decision(calls=[(best.name, {})])
        chosen = self._cover(convo.message, [c for c, s in scored if s >= self.threshold and not c.is_handoff])
        decisions = []
        for cand in chosen:
            args, missing = self._fill(cand, convo.message)
            if missing:
                return self._call_or_ask(cand, args, missing)
            decisions.append((cand.name, args))
        return Decision(calls=decisions)

    # -- scoring

    def _score(self, message: str, cands: list[Candidate]) -> list[tuple[Candidate, float]]:
        said = list(dict.fromkeys(words(message)))
        total = max(len(cands), 1)
        scored: list[tuple[Candidate, float]] = []
        for cand in cands:
            score = 0.0
            for word in said:
                weight = cand.matches(word)
                if weight:
                    df = sum(1 for c in cands if c.matches(word))
                    score += weight * math.log(1 + total / df)
            # Evidence for a required parameter counts too ("12 * 7" for an expression parameter).
            for param in cand.required:
                schema = cand.properties.get(param, {})
                key = param.lower()
                if (key in _EXPRESSION_PARAMS or key in _LOCATION_PARAMS) and extract(param, schema, message, [], cand.vocabulary):
                    score += 1.0
            scored.append((cand, score))
        scored.sort(key=lambda pair: -pair[1])  # stable: ties keep the agent's own order
        return [pair for pair in scored if pair[1] > 0]

    def _cover(self, message: str, ranked: list[Candidate]) -> list[Candidate]:
        """Several tools when each covers a name word of the request the better ones do not."""
        said = set(words(message))
        chosen: list[Candidate] = []
        covered: set[str] = set()
        for cand in ranked:
            name_hits = {w for w in said if any(_same(w, s) for s in cand.fields[0][1])}
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
        missing = [p for p in missing if not _optional(props.get(p, {}))]
        for param in cand.required:
            if param not in args and _optional(props.get(param, {})):
                args[param] = props[param].get("default")
        return args, missing

    def _pending(self, convo: Conversation, cands: dict[str, Candidate]) -> Candidate | None:
        said = convo.last_assistant_before_user
        match = _ASK.search(said or "")
        return cands.get(match.group("tool")) if match else None

    def _fill_pending(self, cand: Candidate, convo: Conversation) -> tuple[dict[str, Any], list[str], bool, bool]:
        """Arguments from every user message since the request that needed them, plus the bare reply."""
        trailing = 0  # how many of this model's last messages asked for this tool's values
        for text in reversed(convo.assistant_messages):
            if f"`{cand.name}`" not in text:
                break
            trailing += 1
        relevant = convo.user_messages[-(trailing + 1) :]
        before, _ = self._fill(cand, *relevant[:-1]) if len(relevant) > 1 else ({}, [])
        args, missing = self._fill(cand, *relevant)
        strong = any(k not in before or before[k] != v for k, v in args.items())
        bare = False
        asked = _ASK.search(convo.last_assistant_before_user or "")
        if asked and not strong:
            param = next((p for p in cand.properties if humanize(p).lower() == asked.group("param").strip().lower()), None)
            if param and param in missing:
                value = _bare_value(param, cand.properties[param], relevant[-1])
                if value is not None:
                    args[param] = value
                    missing.remove(param)
                    bare = True
        return args, missing, strong, bare

    def _call_or_ask(self, cand: Candidate, args: dict[str, Any], missing: list[str]) -> Decision:
        if not missing:
            return Decision(calls=[(cand.name, args)])
        have = ", ".join(f"{humanize(k)}: {v}" for k, v in args.items() if v not in (None, ""))
        needed = _join([humanize(p) for p in missing])
        text = f"To run `{cand.name}` I still need your {needed}."
        if have:
            text += f" So far I have {have}."
        text += f" What is your {humanize(missing[0])}?"
        return Decision(text=text)

    # -- answers

    def _compose(self, outputs: list[tuple[str, str, str]], cands: dict[str, Candidate]) -> str:
        parts = [_summarize(text) for _, _, text in outputs]
        if len(parts) == 1:
            return parts[0]
        return "\n".join(f"- {humanize(name)}: {part}" for (_, name, _), part in zip(outputs, parts, strict=True))

    def _introduce(self, cands: list[Candidate], handed_off: list[dict[str, Any]], convo: Conversation) -> str:
        head = "I'm the offline demo model: no language model is configured, so I match your words to what I can do."
        for call_id in (c.get("call_id") for c in handed_off):
            out = next((o for o in convo.outputs if o[0] == call_id), None)
            target = _handoff_target(out[2]) if out else None
            if target:
                head = f"You are now talking to {target}."
        if not cands:
            return head + " I have no tools available right now, so I cannot look that up."
        lines = [f"- {_first_sentence(c.description) or humanize(c.name)}" for c in cands]
        return head + " I can:\n" + "\n".join(lines)

    @staticmethod
    def _style(instructions: str | None, text: str) -> str:
        return text.lower() if instructions and re.search(r"\blower ?case\b", instructions, re.I) else text


def _optional(schema: dict[str, Any]) -> bool:
    ptype = schema.get("type")
    return "default" in schema or (isinstance(ptype, list) and "null" in ptype) or any(
        isinstance(s, dict) and s.get("type") == "null" for s in schema.get("anyOf", [])
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0] if text else ""


def _handoff_target(output: str) -> str | None:
    try:
        data = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return None
    return data.get("assistant") if isinstance(data, dict) else None


def _summarize(text: str) -> str:
    """Tool output as an answer: plain text as is; JSON lists of records as a bulleted list of their names."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text.strip()
    if isinstance(data, dict):
        if data.get("error"):
            return f"The tool reported an error: {data['error']}"
        lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
        if lists:
            key, records = lists[0]
            if not records:
                return f"No {humanize(key)} found."
            names = [_record_label(r) for r in records]
            return f"Found {len(records)} {humanize(key)}:\n" + "\n".join(f"- {n}" for n in names)
        return "; ".join(f"{humanize(k)}: {v}" for k, v in data.items())
    return text.strip()


def _record_label(record: Any) -> str:
    if isinstance(record, dict):
        for key in ("name", "title", "id"):
            if record.get(key):
                return str(record[key])
        return json.dumps(record)
    return str(record)


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

    def _output(self, system_instructions: str | None, input: str | list[TResponseInputItem], tools: list[Tool], handoffs: list[Handoff]) -> tuple[list[TResponseOutputItem], Usage]:
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
        usage = Usage(requests=1, input_tokens=said, output_tokens=max(wrote, 1), total_tokens=said + max(wrote, 1))
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

    async def stream_response(  # type: ignore[override]
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
        from openai.types.responses import ResponseUsage
        from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

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
                text = item.content[0].text  # type: ignore[union-attr]
                empty = item.model_copy(update={"content": [], "status": "in_progress"})
                yield ResponseOutputItemAddedEvent(type="response.output_item.added", item=empty, output_index=index, sequence_number=next(seq))
                part = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
                yield ResponseContentPartAddedEvent(type="response.content_part.added", item_id=item.id, output_index=index, content_index=0, part=part, sequence_number=next(seq))
                for chunk in _chunks(text):
                    yield ResponseTextDeltaEvent(
                        type="response.output_text.delta", item_id=item.id, output_index=index, content_index=0,
                        delta=chunk, logprobs=[], sequence_number=next(seq),
                    )
                yield ResponseTextDoneEvent(type="response.output_text.done", item_id=item.id, output_index=index, content_index=0, text=text, logprobs=[], sequence_number=next(seq))
                yield ResponseContentPartDoneEvent(type="response.content_part.done", item_id=item.id, output_index=index, content_index=0, part=item.content[0], sequence_number=next(seq))  # type: ignore[arg-type]
            else:
                yield ResponseOutputItemAddedEvent(type="response.output_item.added", item=item, output_index=index, sequence_number=next(seq))
            yield ResponseOutputItemDoneEvent(type="response.output_item.done", item=item, output_index=index, sequence_number=next(seq))
        yield ResponseCompletedEvent(type="response.completed", response=response, sequence_number=next(seq))


class OfflineModelProvider(ModelProvider):
    """Every model name maps to the offline demo model (configs keep their model names for real providers)."""

    def __init__(self) -> None:
        self._model = OfflineModel()

    def get_model(self, model_name: str | None) -> Model:
        return self._model
