import ipywidgets as ipw
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from isodl.core import plots, widgets


def figure_pixels(fig: Figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_style_is_light():
    import matplotlib

    plots.use_style()
    assert matplotlib.rcParams["figure.dpi"] <= 100 and matplotlib.rcParams["savefig.dpi"] <= 100


def test_plot_history_and_grids_return_figures():
    h = {
        "epoch": [0, 1, 2],
        "train_loss": [1.0, 0.5, 0.3],
        "test_loss": [1.1, 0.6, 0.4],
        "test_accuracy": [0.1, 0.6, 0.8],
    }
    assert isinstance(plots.plot_history(h), Figure)
    assert isinstance(plots.image_grid(torch.rand(5, 8, 8), labels=list(range(5)), ncols=3), Figure)
    assert isinstance(plots.signal_grid(torch.randn(4, 40), labels=[1, 2, 3, 4]), Figure)
    with pytest.raises(ValueError, match="epoch"):
        plots.plot_history({"loss": [1.0]})
    with pytest.raises(ValueError, match="keys"):
        plots.plot_history(h, keys=["nope"])
    with pytest.raises(ValueError, match="images must have 3 or 4 dimensions"):
        plots.image_grid(torch.rand(8, 8))
    with pytest.raises(ValueError, match="labels"):
        plots.image_grid(torch.rand(2, 8, 8), labels=[1])
    with pytest.raises(ValueError, match="t must have"):
        plots.signal_grid(torch.randn(2, 10), t=np.arange(5))


def test_elementwise_rotation_gap_is_zero_for_quarter_turns_only():
    for k in range(4):
        assert plots.elementwise_rotation_gap(2.0, k * np.pi / 2) < 1e-12
    assert plots.elementwise_rotation_gap(2.0, np.pi / 4) > 0.3
    # near the origin tanh is almost linear, so the gap vanishes like gain^3
    small = plots.elementwise_rotation_gap(1e-2, np.pi / 4)
    assert 0 < small < 1e-5
    with pytest.raises(ValueError, match="activation"):
        plots.elementwise_rotation_gap(1.0, 0.3, activation="swish")


def plot_line(slope=1.0, kind="a"):
    fig, ax = plots.figure()
    x = np.linspace(0, 1, 10)
    ax.plot(x, slope * x, color="k" if kind == "a" else "r")
    ax.set_ylim(-5, 5)
    return fig


def test_widget_callbacks_redraw_with_new_values():
    w = widgets.interactive_figure(plot_line, slope=(-3.0, 3.0, 0.5), kind=["a", "b"], headless=False)
    assert isinstance(w.controls["slope"], ipw.FloatSlider) and isinstance(w.controls["kind"], ipw.Dropdown)
    assert w.values() == {"slope": 1.0, "kind": "a"}  # the plotting function's defaults
    first = figure_pixels(w.render())
    fig = w.update(slope=-2.0)
    assert w.controls["slope"].value == -2.0 and w.renders == 2
    assert not np.array_equal(first, figure_pixels(fig))
    # moving the control itself (as the browser does) also redraws
    w.controls["kind"].value = "b"
    assert w.renders == 3 and w.last_figure is not fig


def test_widget_headless_shows_a_static_figure(monkeypatch):

    monkeypatch.setenv("ISODL_HEADLESS", "1")
    w = widgets.interactive_figure(plot_line, slope=(0.0, 2.0))
    assert w.headless
    shown = []
    monkeypatch.setattr(widgets, "display", lambda obj: shown.append(obj))
    w._ipython_display_()
    assert isinstance(shown[0], Figure) and shown[1] is w.widget


def test_control_shorthands_and_errors():
    assert isinstance(widgets.make_control("n", (1, 10)), ipw.IntSlider)
    assert isinstance(widgets.make_control("flag", True), ipw.Checkbox)
    slider = ipw.FloatSlider()
    assert widgets.make_control("x", slider) is slider
    with pytest.raises(ValueError, match="min must be < max"):
        widgets.make_control("x", (2.0, 1.0))
    with pytest.raises(ValueError, match="outside"):
        widgets.make_control("x", (0.0, 1.0), default=5.0)
    with pytest.raises(ValueError, match="not one of"):
        widgets.make_control("x", ["a"], default="b")
    with pytest.raises(TypeError, match="control 'x'"):
        widgets.make_control("x", {"a": 1})
    with pytest.raises(ValueError, match="not a parameter"):
        widgets.interactive_figure(plot_line, gain=(0.0, 1.0))
    with pytest.raises(ValueError, match="at least one control"):
        widgets.interactive_figure(plot_line)
    with pytest.raises(TypeError, match="callable"):
        widgets.InteractiveFigure("plot", {"x": (0, 1)})
    w = widgets.interactive_figure(plot_line, slope=(0.0, 2.0), headless=False)
    with pytest.raises(ValueError, match="unknown control"):
        w.update(gain=1)
    bad = widgets.interactive_figure(lambda x=0.0: "not a figure", x=(0.0, 1.0), headless=False)
    with pytest.raises(TypeError, match="Figure"):
        bad.render()


def test_plot_elementwise_ring_widget_changes_with_angle():
    w = widgets.interactive_figure(
        plots.plot_elementwise_ring, gain=(0.1, 4.0, 0.1), angle=(0.0, 6.28, 0.05), headless=False
    )
    a = figure_pixels(w.render())
    b = figure_pixels(w.update(angle=1.0))
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="gain"):
        plots.plot_elementwise_ring(gain=-1.0)


def test_partial_plot_functions_get_clear_errors():
    import functools

    import pytest as _pytest

    from isodl.core import widgets as _w

    def plot(a=1.0, b=2.0):
        return "not a figure"

    bound = functools.partial(plot, b=3.0)
    with _pytest.raises(ValueError, match="not a parameter"):
        _w.interactive_figure(bound, c=(0.0, 1.0, 0.1), headless=False)
    fig = _w.interactive_figure(bound, a=(0.0, 1.0, 0.1), headless=False)
    with _pytest.raises(TypeError, match="must return a matplotlib Figure"):
        fig.update(a=0.5)
