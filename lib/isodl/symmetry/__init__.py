"""Notebooks 01-04 (01, 02, 03, 04): symmetry of activations, the Spotlight Resonance Method, alignment, quantised representations.

srm              notebooks 02-04: the Spotlight Resonance Method, Thomson bases, the isotropic baseline
pppm             notebook 04: the Privileged Plane Projection Method
representations  notebooks 03-04: scalar summaries of representations
autoencoder      notebooks 03-04: the digit autoencoders
plots            notebooks 01-04: figures
checks           notebooks 01-04: exercise checks

The activation functions of notebook 01 live in :mod:`isodl.core.activations`,
because the isotropic networks of notebooks 05-08 use them too.
"""

__all__: list[str] = []
