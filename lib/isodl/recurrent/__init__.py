"""Notebook 11: forward sensitivity against (truncated) BPTT.

models       tanh RNNs with their step Jacobians
sensitivity  forward sensitivity, BPTT and truncated BPTT gradients; costs
tasks        the delayed-recall task and its training driver
plots        figures
checks       the exercise check
"""

__all__: list[str] = []
