"""Tests for isodl.superposition.plots (figures and the widget) and isodl.superposition.checks."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from isodl import exercises
from isodl.superposition import checks, experiments, metrics, models
from isodl.superposition import plots as sp_plots


def _W(seed=0, n=3):
    return torch.randn(n, 4, 10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_figures_are_figures():
    W = _W()
    assert isinstance(sp_plots.plot_weights(list(W), ["a", "b", "c"], suptitle="t"), Figure)
    s = torch.tensor([0.0, 0.5, 0.9])
    table = {"represented": (torch.ones(3), torch.zeros(3)), "dims_per_feature": (torch.ones(3), torch.ones(3))}
    fig = sp_plots.plot_sweep(s, {"relu": table}, ["represented", "dims_per_feature"], ["n", "d"], hlines={"n": [2]})
    assert isinstance(fig, Figure)
    assert isinstance(
        sp_plots.plot_dimensionality(s, metrics.feature_dimensionality(W), norms=metrics.feature_norms(W)), Figure
    )
    pd = experiments.PhaseDiagram(torch.tensor([0.5, 1.0]), s, torch.tensor([[0, 2, 3], [1, 2, 2]]), None, None)
    assert isinstance(sp_plots.plot_phase_diagram(pd), Figure)
    assert isinstance(sp_plots.plot_neuron_weights(list(W[:2]), ["x", "y"]), Figure)
    rows = {"relu": (torch.ones(3), torch.zeros(3), torch.zeros(3), torch.zeros(3))}
    assert isinstance(sp_plots.plot_alignment(s, rows, ylabel="a"), Figure)


def test_hidden_basis_summary_figure():
    summary = {
        ("relu", "sgd"): {"pppm": (0.2, 0.04), "alignment": (0.1, 0.02)},
        ("tanh", "adam"): {"pppm": (-0.1, 0.03), "alignment": (0.0, 0.01)},
    }
    fig = sp_plots.plot_hidden_basis_summary(summary, {"alignment": "weight share", "pppm": "PPPM"}, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_hidden_pppm_panels_share_one_colour_bar():
    from isodl.symmetry import pppm

    cloud = torch.randn(400, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dens = {name: pppm.pppm_density(cloud, None, 0.8, extent=3.0, n_reference=2000) for name in ("a", "b", "c", "d")}
    fig = sp_plots.plot_hidden_pppm(dens, ncols=2, title="t")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # four panels and one colour bar


def test_widget_redraws_nearest_model():
    W = _W(1, 4)
    bank = {(0.0, 0.7): W[0], (0.9, 0.7): W[1], (0.0, 1.0): W[2], (0.9, 1.0): W[3]}
    widget = sp_plots.weights_explorer(bank)
    fig = widget.update(sparsity=0.9, decay=1.0)
    assert isinstance(fig, Figure) and "S = 0.9, I_i = 1^i" in fig.axes[0].get_title()
    before = widget.renders
    widget.update(sparsity=0.0)
    assert widget.renders == before + 1


def test_checks_pass_on_the_reference_and_fail_on_mistakes():
    assert checks.check_feature_dimensionality(metrics.feature_dimensionality, verbose=False).passed
    assert checks.check_polygon_dimensionality(metrics.polygon_dimensionality, verbose=False).passed

    def without_self(W):
        n = W.norm(dim=0)
        u = W / torch.where(n > 0, n, torch.ones_like(n))
        inter = ((u.T @ W) ** 2).sum(-1) - n**2
        return torch.where(n > 0, n**2 / inter, torch.zeros_like(n))

    res = checks.check_feature_dimensionality(without_self, verbose=False)
    assert not res.passed and "j = i included" in res.message
    res = checks.check_polygon_dimensionality(lambda k: 1 / k, verbose=False)
    assert not res.passed and "add up to k/2" in res.message
    assert "feature_dimensionality" in exercises.all_checks()


def test_models_feed_the_widget_bank():
    model = models.ToyModels(1, 5, 2, generator=torch.Generator().manual_seed(0))
    assert isinstance(sp_plots.plot_explorer({(0.0, 0.7): model.W.detach()[0]}), Figure)
