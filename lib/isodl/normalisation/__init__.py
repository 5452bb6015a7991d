"""Notebooks 10-13 (10, 11, 12, 13): the Affine Divergence and normalisation from first principles.

layers       notebooks 10-11: L2/RMS normalisation, the affine-like layer, PatchNorm, attention
divergence   notebooks 10-11: one SGD step measured exactly; mini-batch kernels
experiments  notebooks 11-13: the plain-SGD method comparison and the batch-size test (13: its paired statistics)
plots        notebooks 10-11: figures
checks       notebooks 10-11: exercise checks

Paper: G. Bird, "The Affine Divergence", arXiv 2512.22247.
"""

__all__: list[str] = []
