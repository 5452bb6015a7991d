"""Notebook 14: superposition through the lens of symmetry (toy models of superposition, elementwise against isotropic).

models       the toy models x' = g(W^T f(W x) + b), many instances at once, and their training loop
metrics      the geometry of superposition: norms, interference, dimensions per feature, per-feature
             dimensionality, neuron alignment, kurtosis, recovered features, output rank
experiments  sparsity sweeps over seeds, the F = 2, m = 1 phase diagram, hidden-basis alignment against rotated nulls
plots        figures and the weight-explorer widget
checks       the exercise checks

Paper: Elhage et al., "Toy Models of Superposition" (arXiv 2209.10652). The models follow its
description; the code, the isotropic and rotated variants and the optimiser control are the course's own.
"""

__all__: list[str] = []
