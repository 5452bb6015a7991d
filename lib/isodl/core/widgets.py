"""Notebooks 00-04, 08, 10, 13 (00, 01, 02, 03, 04, 08, 10, 13): interactive figures that also render statically when headless.

Interactive figures: a pure plotting function plus controls.

The pattern used by every notebook::

    def plot_wave(frequency=1.0, phase=0.0):   # pure: returns a Figure
        ...
    widgets.interactive_figure(plot_wave, frequency=(0.5, 5.0, 0.5), phase=(0.0, 3.14, 0.1))

In JupyterLab the controls are live: moving one redraws the figure. In a
headless run (``ISODL_HEADLESS=1``: papermill, nbval, ``make course``) the
default figure is *also* rendered as a static PNG output, so the committed
notebook shows the plot on any viewer (GitHub, nbviewer) where widgets are
not live. Tests drive the callbacks directly through :meth:`InteractiveFigure.update`.

Control shorthands (keyword arguments after the plotting function):

* ``(min, max, step)`` of ints -> IntSlider, of floats -> FloatSlider
  (the plotting function's default value, or ``min``, is the start value);
* a list of options (str or numbers) -> Dropdown;
* ``True``/``False`` -> Checkbox;
* an ``ipywidgets`` control -> used as it is.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable

import ipywidgets as ipw
import matplotlib.pyplot as plt
from IPython.display import clear_output, display
from matplotlib.figure import Figure

from isodl.core.config import is_headless

__all__ = ["make_control", "InteractiveFigure", "interactive_figure"]


def make_control(name: str, spec, default=None) -> ipw.ValueWidget:
    """Build an ipywidgets control from a shorthand ``spec`` (see module docstring)."""
    if isinstance(spec, ipw.ValueWidget):
        return spec
    desc = name.replace("_", " ")
    style = {"description_width": "initial"}
    if isinstance(spec, bool):
        return ipw.Checkbox(value=spec if default is None else bool(default), description=desc, style=style)
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3) or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in spec):
            raise ValueError(
                f"control {name!r}: a tuple must be (min, max) or (min, max, step) of numbers, got {spec!r}"
            )
        lo, hi = spec[0], spec[1]
        if not lo < hi:
            raise ValueError(f"control {name!r}: min must be < max, got {spec!r}")
        integer = all(isinstance(v, numbers.Integral) for v in spec)
        step = spec[2] if len(spec) == 3 else (1 if integer else (hi - lo) / 50)
        if step <= 0:
            raise ValueError(f"control {name!r}: step must be > 0, got {step!r}")
        value = lo if default is None else default
        if not lo <= value <= hi:
            raise ValueError(f"control {name!r}: default {value!r} lies outside [{lo}, {hi}]")
        cls = ipw.IntSlider if integer else ipw.FloatSlider
        return cls(value=value, min=lo, max=hi, step=step, description=desc, style=style, continuous_update=False)
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"control {name!r}: a list of options must not be empty")
        value = spec[0] if default is None else default
        if value not in spec:
            raise ValueError(f"control {name!r}: default {value!r} is not one of the options {spec}")
        return ipw.Dropdown(options=spec, value=value, description=desc, style=style)
    raise TypeError(
        f"control {name!r}: expected (min, max[, step]), a list of options, a bool or an ipywidgets control, "
        f"got {type(spec).__name__}"
    )


class InteractiveFigure:
    """A pure plotting function bound to ipywidgets controls.

    ``plot_fn(**values)`` must return a ``matplotlib.figure.Figure``.
    """

    def __init__(self, plot_fn: Callable[..., Figure], controls: dict, *, headless: bool | None = None):
        if not callable(plot_fn):
            raise TypeError(f"plot_fn must be callable, got {type(plot_fn).__name__}")
        if not controls:
            raise ValueError("controls must name at least one control, e.g. frequency=(0.5, 5.0)")
        sig = inspect.signature(plot_fn)
        params = sig.parameters
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for name in controls:
            if name not in params and not accepts_kwargs:
                raise ValueError(
                    f"control {name!r} is not a parameter of {getattr(plot_fn, '__name__', repr(plot_fn))}{sig}"
                )
        self.plot_fn = plot_fn
        self.headless = is_headless() if headless is None else bool(headless)
        self.controls: dict[str, ipw.ValueWidget] = {}
        for name, spec in controls.items():
            p = params.get(name)
            default = None if p is None or p.default is inspect.Parameter.empty else p.default
            if isinstance(spec, bool):
                default = None
            self.controls[name] = make_control(name, spec, default)
        self.output = ipw.Output()
        self.widget = ipw.VBox(
            [ipw.HBox(list(self.controls.values()), layout=ipw.Layout(flex_flow="row wrap")), self.output]
        )
        self.last_figure: Figure | None = None
        self.renders = 0
        for c in self.controls.values():
            c.observe(self._on_change, names="value")

    def values(self) -> dict:
        """The controls' current values, as keyword arguments for the plotting function."""
        return {name: c.value for name, c in self.controls.items()}

    def render(self, **overrides) -> Figure:
        """Call the plotting function with the current values (and overrides); return its figure."""
        unknown = set(overrides) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; controls are {list(self.controls)}")
        fig = self.plot_fn(**{**self.values(), **overrides})
        if not isinstance(fig, Figure):
            raise TypeError(
                f"{getattr(self.plot_fn, '__name__', repr(self.plot_fn))} must return a matplotlib Figure, got {type(fig).__name__}"
            )
        plt.close(fig)  # never leak figures into pyplot's global state
        self.last_figure = fig
        self.renders += 1
        return fig

    def _draw(self) -> None:
        # Render inside the output area: if the plotting function raises after a
        # control moves, the learner sees the traceback there, not a stale figure.
        with self.output:
            clear_output(wait=True)
            display(self.render())

    def _on_change(self, change) -> None:
        self._draw()

    def update(self, **values) -> Figure:
        """Move controls programmatically (as a learner would) and return the new figure."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; controls are {list(self.controls)}")
        before = self.renders
        for name, value in values.items():
            self.controls[name].value = value
        if self.renders == before:  # value unchanged: no event fired, draw anyway
            self._draw()
        return self.last_figure

    def _ipython_display_(self) -> None:
        if self.headless:
            # Static copy of the default view for viewers without a live kernel;
            # the live widget is still shown and redraws on change.
            display(self.render())
            display(self.widget)
        else:
            self._draw()
            display(self.widget)


def interactive_figure(
    plot_fn: Callable[..., Figure], *, headless: bool | None = None, **controls
) -> InteractiveFigure:
    """Bind ``plot_fn`` to controls; display the result (last expression of a cell) to show it."""
    return InteractiveFigure(plot_fn, controls, headless=headless)
