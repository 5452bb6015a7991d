"""Notebook 00: the course map, from each notebook to the part of the library behind it.

:data:`COURSE_MAP` lists the notebooks in learning order with the subpackage
behind each (the ``code`` column of :func:`course_map`, the table notebook 00
prints); :data:`TRACKS` groups them into the parts of the course, and
:func:`code_for` looks one notebook up. Every module's docstring opens with the
notebooks it serves (the convention is in :mod:`isodl`), so from a notebook you
reach its modules in one step; for notebook 07::

    grep -rlE '^"{3}(Every notebook|Notebooks? [^:]*07)' lib/isodl
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["COURSE_MAP", "TRACKS", "course_map", "code_for"]

#: The course in learning order: (file stem, title, what it teaches, the isodl subpackage behind it).
COURSE_MAP = [
    (
        "00_start_here",
        "Start here",
        "how the course works: parameters and SCALE, exercises and checks, widgets, the data, a first training run",
        "isodl.core",
    ),
    (
        "01_symmetry_of_activations",
        "Symmetry of activations",
        "privileged bases; elementwise maps and their discrete symmetry; isotropic maps and O(n)",
        "isodl.core.activations, isodl.symmetry",
    ),
    (
        "02_spotlight_resonance",
        "The Spotlight Resonance Method",
        "measuring how activations align with a basis; the exact fast formulation; isotropic baselines",
        "isodl.symmetry (srm)",
    ),
    (
        "03_alignment_follows_the_basis",
        "Alignment follows the basis",
        "trained autoencoders and the basis their activation privileges",
        "isodl.symmetry (autoencoder, representations)",
    ),
    (
        "04_quantised_representations",
        "Quantised representations",
        "PPPM density plots; when representations cluster on privileged directions",
        "isodl.symmetry (pppm, representations)",
    ),
    (
        "05_isotropic_networks",
        "Isotropic networks",
        "the isotropic MLP with intrinsic length and psi; 1-Lipschitz Jacobians",
        "isodl.topology (network)",
    ),
    (
        "06_diagonalisation",
        "Diagonalisation",
        "the reparameterisation symmetry, SVD and diagonalised layers",
        "isodl.topology (network)",
    ),
    (
        "07_neurogenesis_and_neurodegeneration",
        "Neurogenesis and neurodegeneration",
        "growing and pruning neurons while the function stays put; SVD removal against magnitude pruning",
        "isodl.topology (network, schedules)",
    ),
    (
        "08_buffer_rule_and_adaptation",
        "The buffer rule and task adaptation",
        "the buffer rule during training; tasks appended and dropped; what each step costs; the grow/shrink grid",
        "isodl.topology (network, schedules)",
    ),
    (
        "09_sparsification",
        "Sparsification",
        "exact non-zero counts after diagonalising alternating layers",
        "isodl.topology (sparsity)",
    ),
    (
        "10_affine_divergence",
        "The Affine Divergence",
        "how one SGD step through an affine map moves activations",
        "isodl.normalisation (divergence, layers)",
    ),
    (
        "11_normalisation_from_first_principles",
        "Normalisation from first principles",
        "L2/RMS normalisation, the affine-like layer, PatchNorm",
        "isodl.normalisation (layers, divergence)",
    ),
    (
        "12_normalisation_experiments",
        "Normalisation experiments",
        "plain-SGD comparison, the batch-size prediction, mechanism tests",
        "isodl.normalisation (experiments)",
    ),
    (
        "13_forward_sensitivity",
        "Forward sensitivity",
        "exact gradients for long-term dependencies vs (truncated) BPTT",
        "isodl.recurrent",
    ),
    (
        "14_superposition",
        "Superposition",
        "toy models of superposition; elementwise against isotropic and rotated output maps; hidden-basis alignment and Adam",
        "isodl.superposition",
    ),
]

#: The parts of the course: (notebooks, subpackage, what it covers).
TRACKS = [
    ("00", "isodl.core", "what every notebook shares"),
    ("01-04", "isodl.symmetry", "symmetry of activations, SRM, alignment, quantised representations"),
    ("05-09", "isodl.topology", "isotropic networks with adaptive topologies"),
    ("10-12", "isodl.normalisation", "the Affine Divergence and normalisation"),
    ("13", "isodl.recurrent", "forward sensitivity and truncated BPTT"),
    ("14", "isodl.superposition", "superposition through the lens of symmetry"),
]

_DEFAULT_DIR = Path(__file__).resolve().parents[3] / "notebooks"


def code_for(notebook: str) -> str:
    """The subpackage behind a notebook, by number (``"07"``) or file stem (``"07_neurogenesis_..."``)."""
    if not isinstance(notebook, str) or not notebook:
        raise TypeError(f"notebook must be a notebook number such as '07' or a file stem, got {notebook!r}")
    key = notebook.removesuffix(".ipynb")
    for stem, _title, _teaches, code in COURSE_MAP:
        if stem == key or stem[:2] == key:
            return code
    raise ValueError(f"notebook {notebook!r} is not in the course map; known: {[s[:2] for s, *_ in COURSE_MAP]}")


def course_map(directory: Path | str | None = None) -> str:
    """The course map as a Markdown table: notebook, title, what it teaches, and the code behind it.

    A notebook missing from ``directory`` (default: the course's notebooks/) is marked *(planned)*.
    """
    directory = _DEFAULT_DIR if directory is None else Path(directory)
    rows = ["| notebook | title | what it teaches | code |", "|---|---|---|---|"]
    for stem, title, teaches, code in COURSE_MAP:
        name = f"{stem}.ipynb" if (directory / f"{stem}.ipynb").exists() else f"{stem}.ipynb (planned)"
        rows.append(f"| {name} | {title} | {teaches} | `{code}` |")
    return "\n".join(rows)
