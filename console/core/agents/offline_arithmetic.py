"""Arithmetic written in words, as an expression: "what is 12 times 7?" -> "12 * 7".

Fixed rewriting rules (number words to digits, then operator words between numbers to symbols), so the offline
demo model can hand a calculator an expression it understands. It covers plus, minus, times / multiplied by,
divided by / over, to the power of, squared, cubed and "N percent of M"; anything else is left as written.
"""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = "|".join([*_UNITS, *_TENS, *_SCALES])
# A run of number words: "seven", "twenty-one", "three hundred and five".
_NUMBER_PHRASE = re.compile(rf"\b(?:{_NUMBER_WORD})(?:(?:\s+|-|\s+and\s+)(?:{_NUMBER_WORD}))*\b", re.I)

_NUM = r"\d[\d,]*(?:\.\d+)?"
_RULES: list[tuple[re.Pattern[str], str]] = [
    # "15 percent of 80" / "15% of 80": multiply first, then divide, so whole results stay whole.
    (re.compile(rf"({_NUM})\s*(?:%|percent|per\s+cent)\s+of\s+({_NUM})", re.I), r"\1 * \2 / 100"),
    (re.compile(r"(?<=[\d)])\s*\bsquared\b", re.I), " ^ 2"),
    (re.compile(r"(?<=[\d)])\s*\bcubed\b", re.I), " ^ 3"),
    (re.compile(r"(?<=[\d)])\s+(?:times|multiplied\s+by)\s+(?=[-(\d])", re.I), " * "),
    (re.compile(r"(?<=[\d)])\s+(?:divided\s+by|over)\s+(?=[-(\d])", re.I), " / "),
    (re.compile(r"(?<=[\d)])\s+plus\s+(?=[-(\d])", re.I), " + "),
    (re.compile(r"(?<=[\d)])\s+minus\s+(?=[-(\d])", re.I), " - "),
    (
        re.compile(r"(?<=[\d)])\s+(?:to\s+the\s+power\s+of|to\s+the\s+power|raised\s+to)\s+(?=[-(\d])", re.I),
        " ^ ",
    ),
]


def _phrase_value(phrase: str) -> int:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", phrase.lower()):
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def digits_for_number_words(text: str) -> str:
    """ "seven times eight" -> "7 times 8"; "twenty-one" -> "21". A trailing "and" stays outside the number."""

    def replace(match: re.Match[str]) -> str:
        phrase = match.group(0)
        return str(_phrase_value(phrase))

    return _NUMBER_PHRASE.sub(replace, text)


def arithmetic_in_words(text: str) -> str:
    """``text`` with arithmetic words between numbers rewritten as operators; other words left alone."""
    rewritten = digits_for_number_words(text)
    for pattern, replacement in _RULES:
        rewritten = pattern.sub(replacement, rewritten)
    return rewritten
