"""The offline demo model's answers, composed from tool outputs with fixed templates (counts agree with their
nouns). When the user names a record the tool returned ("summarise the Q3 budget forecast"), the answer is that
record's description, labelled as the offline model's summary: it never invents or paraphrases content."""

from __future__ import annotations

import json
import re
from typing import Any

from console.core.agents.offline_words import humanize, words
from console.core.plural import counted

OFFLINE_INTRO = (
    "I'm the offline demo model: no language model is configured, so I match your words to what I can do "
    "with fixed rules."
)
SUMMARY_NOTE = (
    "(Summarised by the offline demo model from the document's description in the search results; it does not "
    "read documents. A language model would answer from the document itself.)"
)


def join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0] if text else ""


def handoff_target(output: str) -> str | None:
    try:
        data = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return None
    return data.get("assistant") if isinstance(data, dict) else None


def record_label(record: Any) -> str:
    if isinstance(record, dict):
        for key in ("name", "title", "id"):
            if record.get(key):
                return str(record[key])
        return json.dumps(record)
    return str(record)


def labels_in(text: str) -> list[str]:
    """The names a tool output lists: JSON records' names, or the "- name" lines of an answer built from them."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return [line[2:].strip() for line in text.splitlines() if line.startswith("- ") and line[2:].strip()]
    records = next((v for v in data.values() if isinstance(v, list)), []) if isinstance(data, dict) else []
    return [record_label(r) for r in records if isinstance(r, dict)]


def names_in(message: str, label: str) -> bool:
    """True when ``message`` names ``label``: every content word of the label is in the message."""
    wanted = set(words(label))
    return bool(wanted) and wanted <= set(words(message))


def summarize(text: str, message: str = "") -> str:
    """Tool output as an answer: plain text as is; JSON lists of records as a bulleted list of their names, or
    the description of the records ``message`` names."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text.strip()
    if not isinstance(data, dict):
        return text.strip()
    if data.get("error"):
        return f"The tool reported an error: {data['error']}"
    lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
    if not lists:
        return "; ".join(f"{humanize(k)}: {v}" for k, v in data.items())
    key, records = lists[0]
    if not records:
        return f"No {humanize(key)} found."
    named = [
        r
        for r in records
        if isinstance(r, dict) and r.get("description") and names_in(message, record_label(r))
    ]
    if named:
        return (
            "\n".join(f"{record_label(r)}: {str(r['description']).strip()}" for r in named)
            + "\n"
            + SUMMARY_NOTE
        )
    names = [record_label(r) for r in records]
    return f"Found {counted(len(records), humanize(key))}:\n" + "\n".join(f"- {n}" for n in names)


def compose(outputs: list[tuple[str, str, str]], message: str) -> str:
    """The answer from this turn's (call id, tool name, output) triples."""
    parts = [summarize(text, message) for _, _, text in outputs]
    if len(parts) == 1:
        return parts[0]
    return "\n".join(f"- {humanize(name)}: {part}" for (_, name, _), part in zip(outputs, parts, strict=True))


def capabilities(descriptions: list[str]) -> str:
    return " I can:\n" + "\n".join(f"- {d}" for d in descriptions)


def declined(actions: list[str], descriptions: list[str]) -> str:
    """The answer to a request that only says what not to do ("I do NOT want to run a simulation")."""
    text = f"Understood: I will not {join(actions)}. I'm the offline demo model and follow fixed rules"
    if not descriptions:
        return text + "; there is nothing else I can do here."
    return text + "; here is what else I can do:\n" + "\n".join(f"- {d}" for d in descriptions)
