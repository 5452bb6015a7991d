"""isodl: the helper library of the Isotropic Deep Learning notebook course.

Modules
-------
config    seeds, device, CPU threads, SCALE, headless detection (``setup``)
data      offline datasets (digits, MNIST-1D, synthetic) and real MNIST/CIFAR-10 loaders
train     a small, readable training loop for classifiers and autoencoders
plots     the shared matplotlib style
widgets   interactive figures that also render statically when headless
checks    exercise checks that compare a learner's function with a reference
student   writes student copies of the notebooks (solutions stubbed out)
course    executes notebooks headless and measures their run time and memory
"""
from .config import SCALES, by_scale, configure_threads, get_device, is_headless, resolve_scale, set_seed, setup

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
