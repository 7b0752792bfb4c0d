"""Numbers read from text (typed options, member numbers, serials, ports, CSV fields, HTTP headers):
ASCII digits only, everywhere the same way.

int() reads '١٢' (Arabic-Indic digits) as 12, ' 3' as 3 and '1_0' as 10, and refuses more than
4300 digits with ValueError; str.isdigit() takes '³', which int() refuses; float() takes 'nan',
which every range check lets through, 'inf' and '1e3'. Each of these once reached a user as a
traceback or as a number they did not mean.
"""

from __future__ import annotations


#: digits beyond any number sealcodes reads (int() refuses text of more than 4300 digits)
MAX_NUMBER_DIGITS = 64


def is_ascii_digits(text) -> bool:
    """Whether `text` is one or more of the ASCII digits 0-9 and nothing else: the only numbers
    sealcodes reads from text. str.isdigit() also takes '³' and '١', and int() reads '١٢' as 12,
    ' 3' as 3 and '1_0' as 10; one rule everywhere means one answer everywhere."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def ascii_int(text) -> int | None:
    """The number `text` spells in ASCII digits (is_ascii_digits), or None for any other text,
    including more than MAX_NUMBER_DIGITS digits."""
    if not is_ascii_digits(text) or len(text) > MAX_NUMBER_DIGITS:
        return None
    return int(text)


def ascii_decimal(text) -> float | None:
    """ASCII digits with at most one '.' among them ('2', '0.5', '.5', '5.'), read as a float, or
    None: float() would also take 'nan', 'inf', '1e3', '١' and '1_0'."""
    if not isinstance(text, str) or len(text) > MAX_NUMBER_DIGITS:
        return None
    whole, _, fraction = text.partition(".")
    if not (whole or fraction) or not all(part == "" or is_ascii_digits(part) for part in (whole, fraction)):
        return None
    return float(text)
