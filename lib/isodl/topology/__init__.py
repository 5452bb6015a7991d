"""Notebooks 05-09 (05, 06, 07, 08, 09): isotropic networks, diagonalisation, neurogenesis and neurodegeneration, sparsification.

network    notebooks 05-09: the isotropic MLP and its structural operations; the elementwise control
schedules  notebooks 05-09: training drivers, function-change measures, width and task schedules
sparsity   notebooks 06, 09: exact non-zero counts after diagonalisation and QR rotations; the dimension bound
conv       notebook 06: channel rotations and diagonalisation of isotropic convolutions
baselines  notebook 07: removal baselines (magnitude pruning in the native basis, elementwise control)
plots      notebooks 05-09: figures
checks     notebooks 05-09: exercise checks

Science: ``shared/science/isotropic_topologies.md`` (G. Bird, *Isotropic
Activation Functions Enable Deindividuated Neurons and Adaptive Topologies*,
arXiv 2602.23405).
"""

__all__: list[str] = []
