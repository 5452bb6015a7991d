"""isodl.symmetry.autoencoder: the ablation models of notebooks 03 and 04."""

import math

import matplotlib
import pytest
import torch

from isodl.core import activations
from isodl.symmetry import autoencoder as ae
from isodl.symmetry import plots as sym_plots
from isodl.symmetry import pppm, srm


@pytest.fixture(scope="module")
def digits():
    return ae.digits_unit(0)


def test_digits_unit_range(digits):
    assert digits.x_train.shape[1] == 64
    assert float(digits.x_train.min()) >= 0.0 and float(digits.x_train.max()) <= 1.0
    assert float(digits.x_train.max()) == 1.0


@pytest.mark.parametrize("name", ae.ACTIVATIONS)
def test_every_activation_builds_and_runs(name):
    gen = torch.Generator().manual_seed(0)
    m = ae.AutoEncoder((10, 6, 3), name, generator=gen)
    x = torch.randn(5, 10, generator=gen)
    out = m(x)
    assert out.shape == (5, 10) and torch.isfinite(out).all()
    b = m.bottleneck(x)
    assert b.pre.shape == b.post.shape == (5, 3)


def test_bottleneck_activation_is_the_named_function():
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    Q = activations.random_orthogonal(4, seed=1)
    m = ae.AutoEncoder((6, 4), "tanh", Q.float())
    m = m.double()
    torch.testing.assert_close(m.bottleneck_act(z), torch.tanh(z @ Q.T) @ Q)
    iso = ae.AutoEncoder((6, 4), "isotropic_tanh").double()
    torch.testing.assert_close(iso.bottleneck_act(z), activations.isotropic_tanh(z))
    assert torch.isfinite(iso.bottleneck_act(torch.zeros(1, 4, dtype=torch.float64))).all()
    leaky = ae.AutoEncoder((6, 4), "leaky_relu", negative_slope=0.1).double()
    torch.testing.assert_close(leaky.bottleneck_act(z), torch.nn.functional.leaky_relu(z, 0.1))
    thomson = srm.thomson_basis(6, 4, seed=0)
    mt = ae.AutoEncoder((6, 4), "tanh", thomson).double()
    B = thomson / thomson.norm(dim=1, keepdim=True)
    torch.testing.assert_close(mt.bottleneck_act(z), (4 / 6) * torch.tanh(z @ B.T) @ B, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ae.ISOTROPIC)
def test_isotropic_activation_is_the_shared_function_at_every_length(dtype, name):
    """The autoencoder's isotropic activations are activations.isotropic itself: values and gradients, edges included."""
    act = ae.AutoEncoder((6, 4), name).to(dtype).bottleneck_act
    radial = name[len("isotropic_") :]
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(6, 4, generator=gen, dtype=dtype)
    cases = {
        "typical": base * 3,
        "zero and tiny rows": torch.cat(
            [torch.zeros(1, 4, dtype=dtype), base[:3] * 1e-30, base[:2] * 1e-4, base[:1] * 1e-12]
        ),
        "huge rows": base * 1e30,
        "a huge row in a normal batch": torch.cat([base[:3], base[3:4] * 1e25]),
    }
    for label, z in cases.items():
        a = z.clone().requires_grad_(True)
        b = z.clone().requires_grad_(True)
        fa, fb = act(a), activations.isotropic(b, radial)
        assert torch.isfinite(fa).all(), label
        assert torch.equal(fa, fb), label
        weights = torch.randn(fa.shape, generator=gen, dtype=dtype)
        (fa * weights).sum().backward()
        (fb * weights).sum().backward()
        assert torch.isfinite(a.grad).all(), label
        assert torch.equal(a.grad, b.grad), label
    if name == "isotropic_tanh":
        torch.testing.assert_close(act(cases["typical"]), activations.isotropic_tanh(cases["typical"]))


def test_initial_weights_come_from_the_generator_only():
    state = torch.random.get_rng_state()
    a = ae.AutoEncoder((64, 32, 8), "tanh", generator=torch.Generator().manual_seed(5))
    b = ae.AutoEncoder((64, 32, 8), "isotropic_tanh", generator=torch.Generator().manual_seed(5))
    c = ae.AutoEncoder((64, 32, 8), "tanh", generator=torch.Generator().manual_seed(6))
    assert torch.equal(torch.random.get_rng_state(), state), "building a model must not touch the global RNG"
    for (key, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), key  # same seed, same weights, whatever the activation
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)
    # N(0, 1 / fan_in), biases 0, drawn layer by layer from the generator in this order
    gen = torch.Generator().manual_seed(5)
    for lin in list(a.encoder) + list(a.decoder):
        expected = torch.empty_like(lin.weight).normal_(0.0, 1.0 / math.sqrt(lin.in_features), generator=gen)
        if lin is a.encoder[-1]:
            expected = expected * a.bottleneck_gain
        assert torch.equal(lin.weight, expected)
        assert float(lin.bias.detach().abs().max()) == 0.0
    with pytest.raises(TypeError, match="generator"):
        ae.AutoEncoder((4, 2), "tanh", generator=3)


def test_train_autoencoder_touches_no_global_rng(digits):
    state = torch.random.get_rng_state()
    run = ae.train_autoencoder(digits, "isotropic_tanh", seed=2, epochs=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    fresh = ae.AutoEncoder(
        (64, 32, 8), "isotropic_tanh", bottleneck_gain=6.0, generator=torch.Generator().manual_seed(2)
    )
    again = ae.train_autoencoder(digits, "isotropic_tanh", seed=2, epochs=0)
    for p, q in zip(fresh.parameters(), again.model.parameters()):
        assert torch.equal(p, q)
    assert math.isfinite(run.test_mse)


def test_isotropic_model_commutes_with_rotations_at_the_bottleneck():
    m = ae.AutoEncoder((6, 4), "isotropic_tanh").double()
    R = activations.random_orthogonal(4, seed=3)
    z = torch.randn(9, 4, dtype=torch.float64) * 4
    torch.testing.assert_close(m.bottleneck_act(z @ R.T), m.bottleneck_act(z) @ R.T)


def test_gain_scales_only_the_encoder_to_bottleneck_weights():
    a = ae.AutoEncoder((64, 32, 8), "tanh", bottleneck_gain=1.0, generator=torch.Generator().manual_seed(0))
    b = ae.AutoEncoder((64, 32, 8), "tanh", bottleneck_gain=6.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(b.encoder[1].weight, 6 * a.encoder[1].weight)
    torch.testing.assert_close(b.encoder[0].weight, a.encoder[0].weight)
    torch.testing.assert_close(b.decoder[0].weight, a.decoder[0].weight)
    # init N(0, 1/fan_in), biases 0
    assert abs(float(a.encoder[0].weight.detach().std()) - 1 / 8) < 0.01
    assert float(a.encoder[0].bias.detach().abs().max()) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation"):
        ae.AutoEncoder((4, 2), "swish")
    with pytest.raises(ValueError, match="no privileged basis"):
        ae.AutoEncoder((4, 2), "isotropic_tanh", torch.eye(2))
    with pytest.raises(ValueError, match="dimension mismatch"):
        ae.AutoEncoder((4, 2), "tanh", torch.eye(3))
    with pytest.raises(ValueError, match="zero row"):
        ae.AutoEncoder((4, 2), "tanh", torch.zeros(2, 2))
    with pytest.raises(ValueError, match="bottleneck_gain"):
        ae.AutoEncoder((4, 2), "tanh", bottleneck_gain=0.0)
    with pytest.raises(ValueError, match="widths"):
        ae.AutoEncoder((4,), "tanh")
    with pytest.raises(ValueError, match="columns"):
        ae.AutoEncoder((4, 2), "tanh").bottleneck(torch.zeros(3, 5))


def test_training_is_deterministic_and_learns(digits):
    a = ae.train_autoencoder(digits, "tanh", seed=3, epochs=3, snapshot_epochs=[0, 3])
    b = ae.train_autoencoder(digits, "tanh", seed=3, epochs=3, snapshot_epochs=[0, 3])
    assert a.history.test_loss == b.history.test_loss
    assert torch.equal(a.snapshots[3], b.snapshots[3])
    assert sorted(a.snapshots) == [0, 3]
    assert a.history.test_loss[-1] < a.history.test_loss[0]
    c = ae.train_autoencoder(digits, "tanh", seed=4, epochs=3)
    assert c.history.test_loss != a.history.test_loss
    assert a.settings["bottleneck_gain"] == 6.0 and a.test_mse == a.history.test_loss[-1]
    with pytest.raises(ValueError, match="snapshot_epochs"):
        ae.train_autoencoder(digits, "tanh", epochs=3, snapshot_epochs=[4])


def test_quantisation_signature_small(digits):
    """The spec's signature at a small budget: tanh with gain 6 clusters, isotropic tanh stays continuous."""
    from isodl.symmetry import representations as rep

    ent = {}
    for name in ("tanh", "isotropic_tanh"):
        vals = []
        for seed in (0, 1):
            run = ae.train_autoencoder(digits, name, seed=seed, epochs=40)
            r = pppm.privileged_plane_projection(run.model.bottleneck(digits.x_train).pre, None, 0.8)
            vals.append(rep.angular_entropy(r.angles))
        ent[name] = vals
    assert max(ent["tanh"]) < 0.75
    assert min(ent["isotropic_tanh"]) > 0.85


def test_snapshot_epochs_helper():
    assert ae.latent_snapshot_epochs(60, 4) == [0, 20, 40, 60]
    assert ae.latent_snapshot_epochs(0, 4) == [0]
    assert ae.latent_snapshot_epochs(10, 1) == [10]


def test_repr_plots_render(digits):
    matplotlib.use("Agg")
    run = ae.train_autoencoder(digits, "tanh", seed=0, epochs=2, snapshot_epochs=[0, 2])
    d = pppm.pppm_density(run.snapshots[2], None, 0.8)
    figs = [
        sym_plots.plot_pppm_density(d, title="x"),
        sym_plots.plot_pppm_row({"a": d, "b": d}, title="row"),
        sym_plots.plot_pppm_epoch(run.snapshots, 2, name="tanh"),
        sym_plots.plot_alignment_explorer({"m": run.snapshots[2]}, {"I": torch.eye(8)}, "m", "I"),
        sym_plots.plot_entropy_vs_mse(
            [{"activation": "t", "entropy": 0.5, "mse": 0.1}, {"activation": "t", "entropy": math.nan, "mse": 0.2}]
        ),
        sym_plots.plot_purity({"basis": [0.5, 0.6]}, 0.17),
    ]
    for f in figs:
        assert isinstance(f, matplotlib.figure.Figure) and f.axes
    ax = figs[0].axes[0]
    img = ax.images[0]
    assert img.origin == "lower"
    m = d.extent
    assert list(img.get_extent()) == pytest.approx([-m, m, -m, m])
    assert "b_i" in ax.get_xlabel() and "b_j" in ax.get_ylabel()
    with pytest.raises(ValueError, match="epoch"):
        sym_plots.plot_pppm_epoch(run.snapshots, 1)
    with pytest.raises(TypeError, match="PPPMDensity"):
        sym_plots.plot_pppm_density("nope")
    # the open marker of a run without PPPM points is explained in the legend, and only when there is one
    labels = [t.get_text() for t in figs[4].axes[0].get_legend().get_texts()]
    assert labels == ["t", "no PPPM points (no entropy)"]
    clean = sym_plots.plot_entropy_vs_mse([{"activation": "t", "entropy": 0.5, "mse": 0.1}])
    assert [t.get_text() for t in clean.axes[0].get_legend().get_texts()] == ["t"]


def test_null_plots_render_and_share_one_colour_scale(digits):
    matplotlib.use("Agg")
    from isodl.symmetry import representations as rep

    run = ae.train_autoencoder(digits, "tanh", seed=0, epochs=1)
    z = run.model.bottleneck(digits.x_train).pre
    d1 = pppm.pppm_density(z, None, 0.8)
    d2 = pppm.pppm_density(rep.moment_matched_gaussian(z, generator=torch.Generator().manual_seed(0)), None, 0.8)
    fig = sym_plots.plot_pppm_row({"trained": d1, "gauss": d2}, title="t", caption="look for blobs")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2 and len({im.get_clim() for im in images}) == 1  # one shared colour range
    assert any("one scale" in ax.get_ylabel() for ax in fig.axes)  # and one colour bar that says so
    rows = sym_plots.plot_pppm_row({"a": d1, "b": d2, "c": d1, "d": d1}, ncols=2, share="row")
    assert sum(1 for ax in rows.axes if "density" in ax.get_ylabel()) == 2  # a colour bar per row
    with pytest.raises(ValueError, match="share"):
        sym_plots.plot_pppm_row({"a": d1}, share="column")
    diag = sym_plots.plot_unit_diagnostics({"tanh": rep.unit_diagnostics(z)}, title="units")
    assert "stuck" in diag.axes[0].get_title()
    import io

    for f in (fig, rows, diag):
        f.savefig(io.BytesIO(), format="png")  # draws every artist
    null = sym_plots.plot_against_null({"tanh": ([0.5, 0.6], [0.52, math.nan])}, title="H")
    assert null.axes[0].get_legend().get_texts()[0].get_text() == "tanh (1)"
    srm_only = sym_plots.plot_alignment_explorer({"m": z}, {"I": torch.eye(8)}, "m", "I", show_pppm=False)
    assert len(srm_only.axes) == 1 and not srm_only.axes[0].images  # notebook 03: no PPPM panel before PPPM is taught
    with pytest.raises(ValueError, match="same length"):
        sym_plots.plot_against_null({"a": ([0.1], [0.1, 0.2])})
    with pytest.raises(TypeError, match="UnitDiagnostics"):
        sym_plots.plot_unit_diagnostics({"a": "nope"})


def test_graded_control_plot_draws_curves_trained_lines_and_threshold():
    matplotlib.use("Agg")
    import io

    fig = sym_plots.plot_graded_control(
        {"tanh": ([0.1, 0.5, 1.0], [0.3, 0.7, 0.95]), "iso": ([0.1, 0.5, 1.0], [0.35, 0.75, 0.97])},
        trained={"tanh": 0.8, "iso": math.nan},
        threshold=0.98,
        ylabel="k-means ratio",
        title="t",
    )
    ax = fig.axes[0]
    assert len(ax.lines) == 2 + 1 + 1 + 1  # two curves, one finite trained line, the threshold, the legend proxy
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "tanh: control" in labels and any("threshold" in t for t in labels)
    fig.savefig(io.BytesIO(), format="png")
    with pytest.raises(ValueError, match="same length"):
        sym_plots.plot_graded_control({"a": ([0.1, 0.2], [0.3])})
    with pytest.raises(TypeError, match="non-empty"):
        sym_plots.plot_graded_control({})


def test_kmeans_results_path_sits_beside_the_quantisation_results():
    assert (
        ae.KMEANS_RESULTS.parent == ae.QUANTISATION_RESULTS.parent
        and ae.KMEANS_RESULTS.name == "quantisation_kmeans.json"
    )
