"""Every notebook: seeds, device, CPU threads, SCALE and headless detection (``setup``).

Every notebook starts with one call::

    cfg = isodl.setup(SEED, SCALE)

which seeds Python, NumPy and PyTorch, picks the device, sets CPU threads,
applies the shared plot style (:func:`isodl.core.plots.use_style`) and resolves SCALE (the environment variable
``ISODL_SCALE`` wins over the notebook's parameters cell, so a papermill run and
a plain run agree when the variable is set).

:func:`set_seed` is the one function of the library that seeds the global
random streams; everything else that draws random numbers takes a ``seed`` or
a generator of its own.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from isodl.core.validate import check_choice, check_int

__all__ = [
    "SCALES",
    "SCALE_ENV",
    "DEVICE_ENV",
    "HEADLESS_ENV",
    "THREADS_ENV",
    "set_seed",
    "get_device",
    "configure_threads",
    "resolve_scale",
    "by_scale",
    "is_headless",
    "Config",
    "setup",
]

#: The two sizes every notebook supports. "course" runs on a laptop CPU in about
#: a minute; "paper" is closer to the papers' sizes and wants a GPU.
SCALES = ("course", "paper")

SCALE_ENV = "ISODL_SCALE"
DEVICE_ENV = "ISODL_DEVICE"
HEADLESS_ENV = "ISODL_HEADLESS"
THREADS_ENV = "ISODL_THREADS"


def set_seed(seed: int) -> int:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and CUDA).

    Returns the seed so it can be printed. The same seed gives the same
    numbers from all three libraries.
    """
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on.

    ``prefer`` is ``"cpu"`` (the default), ``"cuda"`` or ``"auto"``; when it is
    ``None`` the environment variable ``ISODL_DEVICE`` is read, falling back to
    ``"cpu"``. ``"auto"`` picks CUDA when present and the CPU otherwise. Asking
    for ``"cuda"`` on a machine without it raises, rather than silently
    running somewhere else. Nothing in the course requires a GPU.
    """
    if prefer is None:
        prefer = os.environ.get(DEVICE_ENV, "cpu")
    prefer = check_choice("prefer", prefer, ("cpu", "cuda", "auto"))
    if prefer == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if prefer == "cuda":
        raise RuntimeError("prefer='cuda' was requested but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device("cpu")


def configure_threads(num_threads: int | None = None) -> int:
    """Set PyTorch's CPU threads and return the number in use.

    The default is **one** thread. The course's models are small: a second
    thread barely helps them on an idle 2-core machine, and as soon as
    anything else uses a core (a browser, a second notebook, a test run)
    PyTorch's threads wait for each other. Measured on the course's 2-core
    machine with another job running, 5 epochs of an MLP on MNIST-1D took
    0.19 s with 1 thread and 42 s with 2. ``ISODL_THREADS`` (or an explicit
    ``num_threads``) overrides it, e.g. for ``SCALE="paper"`` on a big machine.
    """
    if num_threads is None:
        env = os.environ.get(THREADS_ENV)
        if env is not None:
            try:
                num_threads = int(env)
            except ValueError:
                raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}") from None
        else:
            num_threads = 1
    num_threads = check_int("num_threads", num_threads, minimum=1)
    torch.set_num_threads(num_threads)
    try:  # may only be set once per process, before any inter-op work
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return num_threads


def resolve_scale(scale: str | None = "course") -> str:
    """Return the SCALE to use: ``ISODL_SCALE`` if set, else ``scale``.

    Both must be one of :data:`SCALES`; anything else raises a ``ValueError``
    that lists the valid values.
    """
    env = os.environ.get(SCALE_ENV)
    if env:
        return check_choice(f"SCALE (from the environment variable {SCALE_ENV})", env, SCALES)
    if scale is None:
        scale = "course"
    return check_choice("SCALE", scale, SCALES)


def by_scale(scale: str, *, course, paper):
    """Pick a size for the current scale: ``by_scale(SCALE, course=500, paper=20000)``."""
    scale = check_choice("scale", scale, SCALES)
    return course if scale == "course" else paper


def is_headless() -> bool:
    """True when the notebook runs without a live front end (papermill, nbval, CI).

    The course's execute commands (``make test``, ``make course``,
    ``make execute``) set ``ISODL_HEADLESS=1``. Headless runs keep progress
    bars quiet and render widgets' default figures as static images.
    """
    value = os.environ.get(HEADLESS_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Config:
    """What :func:`setup` decided, printed at the top of every notebook."""

    seed: int
    scale: str
    device: torch.device
    threads: int
    headless: bool

    def __str__(self) -> str:
        mode = "headless" if self.headless else "interactive"
        return (
            f"seed={self.seed} scale={self.scale} device={self.device.type} "
            f"threads={self.threads} torch={torch.__version__} ({mode})"
        )


def setup(seed: int = 0, scale: str | None = "course", *, device: str | None = None, style: bool = True) -> Config:
    """Prepare a notebook: seed, scale, device, threads and plot style in one call."""
    seed = set_seed(seed)
    scale = resolve_scale(scale)
    dev = get_device(device)
    threads = configure_threads()
    if style:
        from isodl.core.plots import use_style

        use_style()
    return Config(seed=seed, scale=scale, device=dev, threads=threads, headless=is_headless())
