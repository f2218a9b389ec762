"""One reading per kind of value in a transcript's body: milliseconds, counts, numbers, labels, text and flags
read the same way into the words and into the audio intelligence tables, on both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest

from etl import values


_INFINITE = Decimal("1" + "0" * 5000)  # what loads gives for an integer past Python's digits

# (reader, as JSON gave it, as stored): one row per branch of each reader.
READS = {
    "integer: a whole number": (values.integer, 1234, 1234),
    "integer: the largest an INTEGER column holds": (values.integer, 2**31 - 1, 2**31 - 1),
    "integer: the smallest": (values.integer, -(2**31), -(2**31)),
    "integer: past 32 bits": (values.integer, 2**31, None),
    "integer: below 32 bits": (values.integer, -(2**31) - 1, None),
    "integer: an integral float": (values.integer, 1234.0, 1234),
    "integer: a fraction": (values.integer, 1234.5, None),
    "integer: a negative fraction": (values.integer, -1.5, None),
    "integer: a float past 32 bits": (values.integer, 1e30, None),
    "integer: infinity": (values.integer, float("inf"), None),
    "integer: nan": (values.integer, float("nan"), None),
    "integer: a whole decimal": (values.integer, Decimal("1234"), 1234),
    "integer: a fraction of many digits": (values.integer, Decimal("1234.50000000000000000001"), None),
    "integer: a decimal past any column": (values.integer, _INFINITE, None),
    "integer: true": (values.integer, True, None),
    "integer: false": (values.integer, False, None),
    "integer: digits as text": (values.integer, "1234", None),
    "integer: absent": (values.integer, None, None),
    "number: a fraction": (values.number, 0.93, 0.93),
    "number: an integer": (values.number, 1, 1.0),
    "number: a decimal of many digits, to the nearest float": (values.number, Decimal("0.12345678901234567890123"), 0.12345678901234568),
    "number: an integer past a float": (values.number, 10**400, None),
    "number: a decimal past a float": (values.number, _INFINITE, None),
    "number: nan": (values.number, float("nan"), None),
    "number: true": (values.number, True, None),
    "number: digits as text": (values.number, "0.9", None),
    "number: absent": (values.number, None, None),
    "label: text": (values.label, "A", "A"),
    "label: empty text": (values.label, "", ""),
    "label: an integer": (values.label, 1, "1"),
    "label: a long integer": (values.label, 10**30, str(10**30)),
    "label: an integral float": (values.label, 2.0, "2"),
    "label: a fraction": (values.label, 1.5, None),
    "label: infinity": (values.label, float("inf"), None),
    "label: true": (values.label, True, None),
    "label: a decimal": (values.label, _INFINITE, None),
    "label: an object": (values.label, {"name": "A"}, None),
    "label: a list": (values.label, ["A"], None),
    "label: absent": (values.label, None, None),
    "text: text": (values.text, "hello", "hello"),
    "text: already escaped, kept as it is": (values.text, "nul \uffff0000", "nul \uffff0000"),
    "text: a number": (values.text, 1, None),
    "text: true": (values.text, True, None),
    "text: absent": (values.text, None, None),
    "flag: true": (values.flag, True, True),
    "flag: false": (values.flag, False, False),
    "flag: one": (values.flag, 1, None),
    "flag: text": (values.flag, "true", None),
    "flag: absent": (values.flag, None, None),
}


@pytest.mark.parametrize(("reader", "received", "stored"), READS.values(), ids=READS.keys())
def test_each_reader_returns_the_value_in_its_column_type_or_none(reader, received, stored):
    read = reader(received)
    assert read == stored and type(read) is type(stored)
