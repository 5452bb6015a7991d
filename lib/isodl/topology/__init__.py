"""Notebooks 05-08: isotropic networks, diagonalisation, neurogenesis and neurodegeneration, sparsification.

network    notebooks 05-08: the isotropic MLP and its structural operations; the elementwise control
schedules  notebooks 05-07: training drivers, function-change measures, width and task schedules
sparsity   notebook 08: exact non-zero counts after diagonalisation
plots      notebooks 05-08: figures
checks     notebooks 05-08: exercise checks
"""

__all__: list[str] = []
