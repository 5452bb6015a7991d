"""Shared test set-up: headless mode for everything the tests start (kernels included)."""

import os

os.environ.setdefault("ISODL_HEADLESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
