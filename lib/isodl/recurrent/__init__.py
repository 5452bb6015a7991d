"""Notebook 13: forward sensitivity against (truncated) BPTT.

models       tanh RNNs (one loop, two coupled loops) with their step Jacobians and parameter drift
sensitivity  forward sensitivity, BPTT and truncated BPTT gradients; costs
tasks        the delayed-recall task and its training driver
plots        figures
checks       the exercise check

Paper: Bird & Polivoda, "Backpropagation Through Time For Networks With
Long-Term Dependencies" (arXiv 2103.15589); the derivations and the code are
the course's own.
"""

__all__: list[str] = []
