"""Hostile (and harmless) expressions for the calculator, with the exact answer each must get; shared by the
limit tests and the stall tests."""

from __future__ import annotations

TOO_LARGE = "; numbers are limited to 300 digits. Use smaller numbers or exponents."
FLOAT_RANGE = " is beyond the range of a floating-point number (about 1.8e308)" + TOO_LARGE
ONLY_ASCII = "only ASCII digits 0-9, operators and parentheses may be used: found "
NOT_ALLOWED = " (only numbers and + - * / // % **)"
NINES = "9" * 57 + "..."

# (expression, refusal code, exact message): every limit, and the forms an attacker tries first.
OVER_LIMIT: list[tuple[str, str, str]] = [
    ("(((9^99)^99)^99)^99", "number_too_large", "(9**99)**99 would have about 9,353 digits" + TOO_LARGE),
    ("9^9^9", "number_too_large", "9**9**9 would have about 369,693,100 digits" + TOO_LARGE),
    ("2^2^2^2^2", "number_too_large", "2**2**2**2**2 would have about 19,729 digits" + TOO_LARGE),
    ("10**10**10", "number_too_large", "10**10**10 would have about 10,000,000,001 digits" + TOO_LARGE),
    ("99**99**99", "number_too_large", "99**99**99 would have about 7.38e+197 digits" + TOO_LARGE),
    ("2**3**4**5", "number_too_large", "3**4**5 would have about 489 digits" + TOO_LARGE),
    ("2 ** 1000", "number_too_large", "2 ** 1000 would have about 302 digits" + TOO_LARGE),
    ("-(9**400)", "number_too_large", "9**400 would have about 382 digits" + TOO_LARGE),
    (
        "9^99 x 9^99 x 9^99 x 9^99",
        "number_too_large",
        "9**99 * 9**99 * 9**99 * 9**99 would have about 378 digits" + TOO_LARGE,
    ),
    # A factorial-like chain: every product is checked, the refusal comes at the first one over the limit.
    (
        "*".join(["9999"] * 100),
        "number_too_large",
        "9999*9999*9999*9999*9999*9999*9999*9999*9999*9999*9999*99... would have about 304 digits"
        + TOO_LARGE,
    ),
    ("(10**150)*(10**150)", "number_too_large", "(10**150)*(10**150) has 301 digits" + TOO_LARGE),
    ("10**299*10", "number_too_large", "10**299*10 has 301 digits" + TOO_LARGE),
    ("9" * 400, "number_too_large", NINES + " has 400 digits" + TOO_LARGE),
    ("9" * 400 + "*9", "number_too_large", NINES + " has 400 digits" + TOO_LARGE),
    ("1e308*10", "number_too_large", "1e308*10" + FLOAT_RANGE),
    ("10.0**400", "number_too_large", "10.0**400" + FLOAT_RANGE),
    ("1e999", "number_too_large", "1e999" + FLOAT_RANGE),
    ("2.5**(10**299)", "number_too_large", "2.5**(10**299)" + FLOAT_RANGE),
    (
        "1" + "+1" * 150,
        "too_many_operators",
        "the expression has 150 operators; the limit is 100. Split the calculation into smaller steps.",
    ),
    (
        "-" * 999 + "1",
        "too_many_operators",
        "the expression has 999 operators; the limit is 100. Split the calculation into smaller steps.",
    ),
    ("(" * 31 + "1" + ")" * 31, "too_deeply_nested", "parentheses nest 31 deep; the limit is 30."),
    ("(" * 499 + "1" + ")" * 499, "too_deeply_nested", "parentheses nest 499 deep; the limit is 30."),
    ("1+" * 600 + "1", "expression_too_long", "the expression has 1201 characters; the limit is 1000."),
    ("9" * 5000, "expression_too_long", "the expression has 5000 characters; the limit is 1000."),
]
LIMIT_OF = {
    "number_too_large": {"max_digits": 300},
    "too_many_operators": {"max_operators": 100},
    "too_deeply_nested": {"max_depth": 30},
    "expression_too_long": {"max_chars": 1000},
}

# Not arithmetic at all: a ValueError saying what is wrong (the model sees it as a tool error, as before).
NOT_ARITHMETIC: list[tuple[str, str]] = [
    ("١٢٣ + 4", ONLY_ASCII + "'١' (U+0661 ARABIC-INDIC DIGIT ONE) at position 0"),
    ("１２３*２", ONLY_ASCII + "'１' (U+FF11 FULLWIDTH DIGIT ONE) at position 0"),
    ("2²", ONLY_ASCII + "'²' (U+00B2 SUPERSCRIPT TWO) at position 1"),
    ("𝟗^𝟗", ONLY_ASCII + "'𝟗' (U+1D7D7 MATHEMATICAL BOLD DIGIT NINE) at position 0"),
    ("1\x00+1", ONLY_ASCII + "'\\x00' (U+0000 a control character) at position 1"),
    (
        "__import__('os').system('id')",
        "not allowed in a calculation: \"__import__('os').system('id')\"" + NOT_ALLOWED,
    ),
    ("'a'*10**9", "not allowed in a calculation: \"'a'\"" + NOT_ALLOWED),
    ("[9]*9**9", "not allowed in a calculation: '[9]'" + NOT_ALLOWED),
    ("3 << 10000", "not allowed in a calculation: '3 << 10000'" + NOT_ALLOWED),
    ("True**10**10", "not allowed in a calculation: 'True'" + NOT_ALLOWED),
    ("1j*2", "not allowed in a calculation: '1j'" + NOT_ALLOWED),
    ("(-8)**0.5", "(-8)**0.5 has no real value"),
    ("0**-1", "division by zero in 0**-1"),
    ("10 % 0", "division by zero in 10 % 0"),
]

# At the limits, and cheap although the numbers in them are not small: still answered.
WITHIN: list[tuple[str, int | float]] = [
    ("12 * (3 + 4)", 84),
    ("10**299", 10**299),
    ("9*10**299", 9 * 10**299),
    ("-(10**299)", -(10**299)),
    ("(-9)**301", (-9) ** 301),
    ("2^-1000", 2.0**-1000),
    ("1**(10**299)", 1),
    ("(-1)**(10**299+1)", -1),
    ("0.5**(10**299)", 0),
    ("1e308", 1e308),
    ("1,000 x 3", 3000),
    ("7 ÷ 2", 3.5),
    ("6 × 7", 42),
    ("10 − 3", 7),
    ("(" * 30 + "1+1" + ")" * 30, 2),
    ("1" + "+1" * 100, 101),
]


# What people (and attackers) type: the offline model picks the expression out of the text.
HTTP_CASES = [c for c in OVER_LIMIT if c[0] in ("(((9^99)^99)^99)^99", "9^9^9", "2^2^2^2^2")] + [
    ("10^299*10", "number_too_large", "10**299*10 has 301 digits" + TOO_LARGE),
    ("how much is 2^1000?", "number_too_large", "2**1000 would have about 302 digits" + TOO_LARGE),
    (
        f"what is {'1+' * 600}1?",
        "expression_too_long",
        "the expression has 1201 characters; the limit is 1000.",
    ),
    (f"what is {'(' * 40}1+1{')' * 40}", "too_deeply_nested", "parentheses nest 40 deep; the limit is 30."),
]
