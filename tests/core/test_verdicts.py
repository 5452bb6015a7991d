"""Tests of isodl.core.verdicts and tools.verdicts (the "what reproduces" page)."""

from __future__ import annotations

import nbformat
import pytest

from isodl.core import verdicts
from isodl.core.verdicts import MIME, Verdict
from tools import verdicts as tool

FIELDS = dict(
    claim="Tanh latents cluster",
    source="arXiv 2507.12070",
    statistic="H 0.56",
    null="H 0.55 (moment-matched Gaussian)",
    seeds="0-5",
    verdict="not reproduced",
)


def test_verdict_fields_and_line():
    v = Verdict(**FIELDS)
    assert v.line().startswith("VERDICT (not reproduced): Tanh latents cluster [arXiv 2507.12070].")
    bundle = v._repr_mimebundle_()
    assert bundle[MIME] == FIELDS and bundle["text/plain"] == v.line()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"verdict": "sort of"}, ValueError, "verdict must be one of"),
        ({"claim": ""}, TypeError, "claim must be a non-empty str"),
        ({"seeds": 3}, TypeError, "seeds must be a non-empty str"),
        ({"statistic": "a | b"}, ValueError, "statistic must be one line without"),
        ({"null": "a\nb"}, ValueError, "null must be one line"),
        ({"source": "a paper"}, ValueError, "source must be one of"),
    ],
)
def test_bad_verdicts_are_rejected(change, error, match):
    with pytest.raises(error, match=match):
        Verdict(**{**FIELDS, **change})


def test_verdict_prints_outside_ipython(capsys):
    assert verdicts.verdict(**FIELDS) is None
    assert capsys.readouterr().out.strip() == Verdict(**FIELDS).line()


def test_collect_and_render(tmp_path):
    v = Verdict(**FIELDS)
    out = nbformat.v4.new_output("display_data", data=v._repr_mimebundle_())
    other = Verdict(**{**FIELDS, "source": "course", "verdict": "derived", "claim": "x"})
    cells = [
        nbformat.v4.new_code_cell("a"),
        nbformat.v4.new_code_cell("b", outputs=[out, nbformat.v4.new_output("stream", name="stdout", text="hi")]),
        nbformat.v4.new_code_cell(
            "c", outputs=[nbformat.v4.new_output("display_data", data=other._repr_mimebundle_())]
        ),
    ]
    path = tmp_path / "04_q.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), *cells]), path)
    rows = tool.collect([path])
    assert rows == [("04_q.ipynb", 1, v), ("04_q.ipynb", 2, other)]
    page = tool.render(rows)
    assert f"## {verdicts.SOURCES['arXiv 2507.12070']}" in page and f"## {verdicts.SOURCES['course']}" in page
    # tables follow the order of SOURCES, not the order the notebooks name them
    assert page.index(verdicts.SOURCES["arXiv 2507.12070"]) < page.index(verdicts.SOURCES["course"])
    assert "| [04](../notebooks/04_q.ipynb) (1) | Tanh latents cluster | H 0.56 |" in page
    assert "**not reproduced** |" in page
    assert "No notebook records" in tool.render([])


def test_page_agrees_with_the_committed_notebooks():
    assert tool.PAGE.is_file(), "run python -m tools.verdicts"
    assert tool.PAGE.read_text() == tool.render(tool.collect()), "run python -m tools.verdicts"
