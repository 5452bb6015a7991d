"""Notebooks 09-10 (09, 10): the Affine Divergence and normalisation from first principles.

layers       notebooks 09-10: L2/RMS normalisation, the affine-like layer, PatchNorm, attention
divergence   notebooks 09-10: one SGD step measured exactly; mini-batch kernels
experiments  notebook 10: the plain-SGD method comparison and the batch-size test
plots        notebooks 09-10: figures
checks       notebooks 09-10: exercise checks

Paper: G. Bird, "The Affine Divergence", arXiv 2512.22247.
"""

__all__: list[str] = []
