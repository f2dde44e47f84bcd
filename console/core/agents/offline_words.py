"""How the offline demo model reads words: stems, stop words, negation and a few everyday concepts.

Deterministic word rules, not language understanding: a word matches a tool when its stem matches a stem of the
tool's name, description or parameters. Words after a negation ("I do NOT want a simulation") count against a
tool rather than for it, and a few everyday words also say the concept they belong to ("rain" is weather,
"summarise" asks to read a document), so a question need not use the tools' own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.core.agents.offline_arithmetic import arithmetic_in_words, digits_for_number_words

# Words that say nothing about which tool to use.
STOP = frozenset(
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
        "more", "again", "still", "too",
    ]
)  # fmt: skip
# Words that ask for a search without narrowing it ("list everything I can read again", "summarise ...").
QUERY_FILLER = frozenset(
    [
        "list", "every", "everything", "all", "each", "available", "visible", "accessible", "access", "read",
        "see", "allowed", "permitted", "currently", "ones", "stuff", "things", "thing", "search", "searching",
        "query", "lookup", "summarise", "summarize", "summary", "summarised", "summarized", "gist", "recap",
        "describe", "explain", "document", "documents", "doc", "docs", "file", "files",
    ]
)  # fmt: skip
TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9']*|\d+(?:[.,]\d+)*")  # "Q3" is one word

# A negation covers the words after it up to the end of the clause; "no" only the word right after it ("no
# simulation"), so an answer such as "no my name is Bob" still gives a name.
_NEGATIONS = frozenset(["not", "never", "without", "dont", "don't", "doesnt", "doesn't", "didnt", "didn't",
                        "wont", "won't", "cant", "can't", "cannot", "nor", "neither"])  # fmt: skip
_CLAUSE_END = re.compile(r"[.;!?\n,]|\b(?:but|instead|rather|just|only|though|however)\b", re.I)
# Trailing "s" that is not a plural: "news" must not become "new" (and match "New York").
_NOT_PLURAL = frozenset(
    ["news", "series", "species", "means", "physics", "mathematics", "economics", "always"]
)

# Everyday words and the concept stems they also say. Concepts count at half weight: a tool that uses the
# user's own word still wins over one that matches only through a concept.
_CONCEPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(["rain", "raining", "rainy", "snow", "snowing", "snowy", "sunny", "sunshine", "wind", "windy",
                     "storm", "stormy", "cloud", "cloudy", "umbrella", "fog", "foggy", "humid", "humidity",
                     "hail", "drizzle", "thunder"], ("weather",)),
    **dict.fromkeys(["hot", "cold", "warm", "chilly", "freezing", "degrees", "celsius", "fahrenheit"],
                    ("temperature", "weather")),
    **dict.fromkeys(["tomorrow", "tonight", "weekend", "week", "upcoming", "coming"], ("forecast",)),
    **dict.fromkeys(["summarise", "summarize", "summary", "summarised", "summarized", "gist", "recap", "tldr"],
                    ("document",)),
}  # fmt: skip
CONCEPT_WEIGHT = 0.5


def stem(word: str) -> str:
    word = word.lower().replace("'", "").replace("’", "")
    if word in _NOT_PLURAL:
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            return word[: len(word) - len(suffix)] + repl
    return word


def _split(text: str) -> str:
    """snake_case and camelCase apart, so tool names read as words."""
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", text.replace("_", " ").replace("-", " "))


def words(text: str) -> list[str]:
    """Content words of ``text``, split from snake_case and camelCase too, stemmed, stop words removed."""
    return [stem(t) for t in TOKEN.findall(_split(text)) if t.lower() not in STOP and not t[0].isdigit()]


def same(a: str, b: str) -> bool:
    """Stems match when equal, or when they share a long prefix (simulation / simulator / simulate)."""
    if a == b:
        return True
    n = min(len(a), len(b))
    return n >= 5 and a[:5] == b[:5] and (a.startswith(b) or b.startswith(a) or n >= 6 and a[:6] == b[:6])


def humanize(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ").replace("-", " ")).strip()


@dataclass(frozen=True)
class Said:
    """What a message says, as stems: ``words`` affirmed, ``negated`` under a negation, ``concepts`` implied."""

    words: tuple[str, ...]
    negated: tuple[str, ...]
    concepts: tuple[str, ...]


def read_message(text: str) -> Said:
    """The message's content words, split into affirmed and negated ones, plus the concepts the affirmed imply."""
    affirmed: list[str] = []
    negated: list[str] = []
    concepts: list[str] = []
    # Arithmetic in words reads as digits and operators: "seven times eight" says nothing about a seven-day
    # forecast. Number words elsewhere ("the seven day forecast") stay words.
    arithmetic = arithmetic_in_words(text)
    if arithmetic != digits_for_number_words(text):
        text = arithmetic
    for clause in _CLAUSE_END.split(_split(text.replace("’", "'"))):
        negating, just_no = False, False
        for token in TOKEN.findall(clause):
            lowered = token.lower()
            if lowered in _NEGATIONS or lowered == "no":
                negating, just_no = negating or lowered != "no", lowered == "no"
                continue
            if lowered in STOP or token[0].isdigit():
                just_no = False
                continue
            (negated if negating or just_no else affirmed).append(stem(token))
            if not (negating or just_no):
                concepts.extend(_CONCEPTS.get(lowered, ()))
            just_no = False
    unique = list(dict.fromkeys(affirmed))
    return Said(
        tuple(unique),
        tuple(w for w in dict.fromkeys(negated) if w not in unique),
        tuple(c for c in dict.fromkeys(concepts) if c not in unique),
    )
