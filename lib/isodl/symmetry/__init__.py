"""Notebooks 01-04: symmetry of activations, the Spotlight Resonance Method, alignment, quantised representations.

srm              notebooks 02-04: the Spotlight Resonance Method
pppm             notebook 04: the Privileged Plane Projection Method
representations  notebooks 03-04: summaries of representations
autoencoder      notebooks 03-04: the digit autoencoders
plots            notebooks 01-04: figures
checks           notebooks 01-04: exercise checks
"""

__all__: list[str] = []
