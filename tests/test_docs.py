"""Every example in the language reference compiles (``dl`` blocks), or fails as marked
(``dl error`` blocks): the docs cannot drift from the compiler."""

import re
from pathlib import Path

import pytest

from dlc.compiler import DlcError, load
from dlc.compiler.frontend.program import load_program

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
BLOCKS = re.findall(r"^```dl( error)?\n(.*?)^```$", DOC.read_text(), re.S | re.M)


def test_the_reference_has_examples():
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_compiles(index, tmp_path):
    # Examples that others import name their file in a first line `# file: PATH`.
    for _, body in BLOCKS:
        named = re.match(r"# file: (\S+)", body)
        if named:
            (tmp_path / named.group(1)).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / named.group(1)).write_text(body)
    error, body = BLOCKS[index]
    path = tmp_path / f"example{index}.dl"
    path.write_text(body)
    networks = load_program(path).root_networks
    if error:
        with pytest.raises(DlcError):
            for name in networks:
                load(path, name)
    else:
        for name in networks:
            load(path, name)


def test_the_op_index_is_the_registry():
    """docs/language.md's op index is ``dlc ops --format markdown``, as generated."""
    from dlc.compiler.ops import catalog

    block = re.search(r"<!-- ops:begin[^>]*-->\n(.*?)\n<!-- ops:end -->", DOC.read_text(), re.S)
    assert block, "docs/language.md has lost its op index markers"
    assert block.group(1) == catalog.as_markdown(), (
        "docs/language.md's op index is stale: run python -m dlc.compiler.ops.catalog "
        "docs/language.md"
    )
