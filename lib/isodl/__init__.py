"""Every notebook: isodl, the helper library of the Isotropic Deep Learning notebook course.

The top level re-exports what the first cell of every notebook calls
(:func:`setup`, :func:`by_scale`, :func:`set_seed`, from :mod:`isodl.core.config`);
everything else is imported from the module that defines it, for example
``from isodl.topology import network``.

The tree follows the course. Every module's docstring opens with the notebooks
it serves, in one of five forms::

    Every notebook: ...
    Notebook 13: ...
    Notebooks 06, 09: ...
    Notebooks 05-09 (05, 06, 07, 08): ...     (a range is followed by the full list)
    Researchers (no notebook): ...            (a tool no notebook imports, e.g. core.capture)

so ``grep -rl "Notebooks 05-09" lib`` finds a part's modules, and this lists every
module behind notebook 07::

    grep -rlE '^"{3}(Every notebook|Notebooks? [^:]*07)' lib/isodl

Packages
--------
core           every notebook: config (``setup``), validate, data, activations
               (elementwise and isotropic), ops, train (the one training loop),
               plots (style and shared figures), widgets, coursemap, the
               notebook 00 check
exercises      every notebook: the exercise-check framework (compare a learner's
               function with a reference on random inputs; PASS or a hint)
symmetry       notebooks 01-04: srm, pppm, representations, autoencoder, plots, checks
topology       notebooks 05-09: network, schedules, sparsity, plots, checks
normalisation  notebooks 10-11: layers, divergence, experiments, plots, checks
recurrent      notebook 13: models, sensitivity, tasks, plots, checks
superposition  notebook 14: models, metrics, experiments, plots, checks

Layout rules (checked by ``tests/test_layout.py``): imports follow the course
(``core`` imports no part, ``exercises`` imports only ``core``, and a part
imports ``core``, ``exercises`` and only the parts before it: symmetry <
topology < normalisation < recurrent); no module uses another's private names;
every module's ``__all__`` is complete; figures are drawn only in the ``plots``
modules and :mod:`isodl.core.widgets`; random numbers come from explicit
generators (:func:`set_seed` is the one function that seeds the global streams).
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
