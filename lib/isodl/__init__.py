"""isodl: the helper library of the Isotropic Deep Learning notebook course.

The tree follows the course. Every module's docstring opens with the notebooks it
serves, so ``grep -rl "Notebook 07" lib`` (or ``"Notebooks 05-08"``) finds the
code behind a notebook.

Packages
--------
core           every notebook: config (``setup``), validate, data, activations
               (elementwise and isotropic), train (the one training loop), plots
               (style and shared figures), widgets, ops, the notebook 00 check
exercises      the exercise-check framework (compare a learner's function with
               a reference on random inputs; PASS or a hint)
symmetry       notebooks 01-04: srm, pppm, representations, autoencoder, plots, checks
topology       notebooks 05-08: network, schedules, sparsity, plots, checks
normalisation  notebooks 09-10: layers, divergence, experiments, plots, checks
recurrent      notebook 11: models, sensitivity, tasks, plots, checks

Imports follow the course: ``core`` imports no part; a part imports ``core``
and, where it builds on an earlier part, only parts before it.
"""

from isodl.core.config import (
    SCALES,
    by_scale,
    configure_threads,
    get_device,
    is_headless,
    resolve_scale,
    set_seed,
    setup,
)

__version__ = "0.1.0"

__all__ = [
    "SCALES",
    "by_scale",
    "configure_threads",
    "get_device",
    "is_headless",
    "resolve_scale",
    "set_seed",
    "setup",
]
