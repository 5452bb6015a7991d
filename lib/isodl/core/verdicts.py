"""Every notebook: a notebook's verdict on one claim, stored in its outputs for the "what reproduces" page.

A notebook states each claim it tests with :func:`verdict`::

    verdicts.verdict(
        "Tanh bottlenecks give quantised (clustered) latents",
        source="arXiv 2507.12070",
        statistic="angular entropy H 0.56 (trained)",
        null="0.55 (moment-matched Gaussian)",
        seeds="0-5",
        verdict="not reproduced",
    )

The call shows one line to the learner and stores the fields in the cell's
output under the MIME type :data:`MIME`, so the committed notebook itself is
the record: ``python -m tools.verdicts`` collects every notebook's verdicts into
``docs/what_reproduces.md`` and a test checks that the page agrees with the
committed notebooks. Nothing is written to disk by the notebook.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["MIME", "SOURCES", "VERDICTS", "Verdict", "verdict"]

#: The output MIME type that carries a verdict's fields.
MIME = "application/vnd.isodl.verdict+json"

#: The verdicts a claim can get, with what each means.
VERDICTS = {
    "reproduced": "the paper's claim holds here, against the null shown",
    "not reproduced": "the claim does not hold at the course's scale (the statistic does not beat its null)",
    "opposite": "the effect is real but has the opposite sign or direction to the claim",
    "partly reproduced": "part of the claim holds against its null, part does not (the statistic says which)",
    "derived": "derived in the notebook and checked numerically (no experiment needed)",
    "reconstruction": "the course's own reconstruction of something the paper states without detail",
    "not tested": "a claim of the paper that the course does not test",
}


#: Where a claim comes from: the key goes in ``source=``, the value titles its table on the page.
SOURCES = {
    "arXiv 2505.13471": "The Spotlight Resonance Method (arXiv 2505.13471)",
    "arXiv 2507.12070": "Quantised representations from anisotropic functions (arXiv 2507.12070)",
    "arXiv 2602.23405": "Isotropic activations with adaptive topologies (arXiv 2602.23405)",
    "arXiv 2512.22247": "The Affine Divergence (arXiv 2512.22247)",
    "arXiv 2103.15589": "BPTT and forward sensitivity for long-term dependencies (arXiv 2103.15589)",
    "arXiv 2209.10652": "Toy Models of Superposition (Elhage et al., arXiv 2209.10652)",
    "course": "The course's own questions and reconstructions",
}


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{name} must be a non-empty str, got {value!r}")
    if "|" in value or "\n" in value:
        raise ValueError(f"{name} must be one line without '|' (it becomes a table cell), got {value!r}")
    return value.strip()


@dataclass(frozen=True)
class Verdict:
    """One claim, the statistic against its null, the seeds and the verdict (one of :data:`VERDICTS`)."""

    claim: str
    source: str
    statistic: str
    null: str
    seeds: str
    verdict: str

    def __post_init__(self) -> None:
        for name in ("claim", "source", "statistic", "null", "seeds"):
            object.__setattr__(self, name, _text(name, getattr(self, name)))
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {self.source!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {sorted(VERDICTS)}, got {self.verdict!r}")

    def line(self) -> str:
        return (
            f"VERDICT ({self.verdict}): {self.claim} [{self.source}]. "
            f"Statistic: {self.statistic}; null: {self.null}; seeds: {self.seeds}."
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {MIME: asdict(self), "text/plain": self.line()}


def verdict(claim: str, *, source: str, statistic: str, null: str, seeds: str, verdict: str) -> None:
    """Show and record a verdict (see the module docstring).

    In a notebook the verdict is displayed with its fields in the output
    (:data:`MIME`); outside IPython its line is printed. Returns None, so a
    verdict as a cell's last line is not shown twice; build a :class:`Verdict`
    to get the object.
    """
    v = Verdict(claim=claim, source=source, statistic=statistic, null=null, seeds=seeds, verdict=verdict)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency of the course
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(v)
    else:
        print(v.line())
