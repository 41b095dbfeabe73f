"""The generated parse tables (compiler/frontend/dl_tables.py) match grammar/dl.lark, and the
parser that runs on them accepts exactly what Lark's own parser accepts."""

import random
from pathlib import Path

import pytest

from dlc.compiler.errors import DlcError
from dlc.compiler.frontend import gen_tables, parser

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.dl"))


def test_tables_are_up_to_date():
    assert gen_tables.TABLES.read_text(encoding="utf-8") == gen_tables.render(), (
        "grammar/dl.lark changed: run `python -m dlc.compiler.frontend.gen_tables`"
    )


def _lark_accepts(text: str) -> bool:
    from lark.exceptions import UnexpectedInput

    try:
        parser._lark("module")[0].parse(text)
    except UnexpectedInput:
        return False
    return True


def _mutants(text: str, n: int, rng: random.Random):
    """``text`` with a character or a short piece deleted, duplicated or swapped in."""
    pieces = ["(", ")", "[", "]", "{", "}", ",", "\n", "|", "=", "if", "else", " ", "1", "."]
    for _ in range(n):
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(1, 4))
        yield rng.choice(
            [
                text[:i] + text[j:],
                text[:i] + text[i:j] * 2 + text[j:],
                text[:i] + rng.choice(pieces) + text[i:],
            ]
        )


@pytest.mark.parametrize("spec", SPECS[:6], ids=lambda p: p.name)
def test_accepts_what_lark_accepts(spec):
    rng = random.Random(spec.name)
    for text in _mutants(spec.read_text(encoding="utf-8"), 60, rng):
        try:
            parser.parse(text)
            accepted = True
        except DlcError:
            accepted = False
        assert accepted == _lark_accepts(text), text
