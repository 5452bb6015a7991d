"""Tests for isodl.superposition.experiments: sweeps, the phase diagram, alignment against nulls, commutation."""

from __future__ import annotations

import math

import pytest
import torch

from isodl.superposition import experiments, models


def test_instance_grid_and_mean_se():
    s = experiments.instance_grid([0.1, 0.5], 3)
    assert s.tolist() == [0.1, 0.1, 0.1, 0.5, 0.5, 0.5]
    mean, se = experiments.mean_se(torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0]), 3)
    assert mean.tolist() == [2.0, 5.0]
    assert se[0] == pytest.approx(1.0 / math.sqrt(3)) and float(se[1]) == 0.0
    m2, _ = experiments.mean_se(torch.tensor([1.0, float("nan"), 3.0]), 3)
    assert float(m2) == 2.0
    with pytest.raises(ValueError, match="multiple of n_seeds"):
        experiments.mean_se(torch.ones(5), 3)
    with pytest.raises(ValueError, match="settings"):
        experiments.instance_grid([], 2)


def test_sweep_table_and_determinism():
    imp = models.geometric_importance(6, 0.8)
    kw = dict(n_hidden=2, steps=200, batch=64, lr=1e-2)
    a = experiments.train_sweep([0.0, 0.9], 2, imp, seed=3, **kw)
    b = experiments.train_sweep([0.0, 0.9], 2, imp, seed=3, **kw)
    assert torch.equal(a.W, b.W)
    table = a.table()
    assert set(table) == {"represented", "dims_per_feature", "recovered", "loss"}
    assert table["represented"][0].shape == (2,)
    assert a.instance(1, 1) == 3


def test_classify_two_features():
    W = torch.tensor([[[1.0, 0.0]], [[0.0, 0.9]], [[1.0, -1.0]], [[0.1, 0.2]], [[0.7, 0.7]], [[0.6, -0.6]]])
    # a shared direction (0.7, 0.7) or a short antipodal pair is not superposition
    assert experiments.classify_two_features(W).tolist() == [0, 1, 2, 3, 0, 0]
    with pytest.raises(ValueError, match="shape"):
        experiments.classify_two_features(torch.ones(2, 3))


def test_phase_diagram_dense_and_sparse_corners():
    pd = experiments.phase_diagram([0.5, 1.0], [0.0, 0.99], n_restarts=2, steps=600, batch=256, lr=2e-2, seed=0)
    assert pd.phase.shape == (2, 2) and pd.W.shape == (2, 2, 1, 2)
    assert int(pd.phase[0, 0]) == 0  # dense, feature 2 less important: feature 1 only
    assert int(pd.phase[1, 1]) == 2  # sparse, equal importance: antipodal pair
    # the ReLU filters the partner's interference: both features come back clean
    assert pd.responses.shape == (2, 2, 2, 2)
    assert torch.allclose(pd.responses[1, 1], torch.eye(2, dtype=torch.float64), atol=0.1)
    linear = experiments.phase_diagram([1.0], [0.99], output="linear", n_restarts=2, steps=600, batch=256, lr=2e-2)
    assert int(linear.phase[0, 0]) != 2  # no antipodal pair without the ReLU
    with pytest.raises(ValueError, match="relative_importance"):
        experiments.phase_diagram([0.0], [0.1], steps=1, batch=1, lr=0.1)


def test_hidden_alignment_keys_and_rotated_null():
    gen = torch.Generator().manual_seed(0)
    model = models.ToyModels(2, 6, 3, hidden="relu", generator=gen)
    with torch.no_grad():  # monosemantic: feature k on neuron k
        model.W.zero_()
        model.W[:, [0, 1, 2], [0, 1, 2]] = 1.0
    out = experiments.hidden_alignment(model, 0.95, generator=gen, n_samples=2000)
    assert set(out) == {"alignment", "alignment_null", "log_kurtosis_ratio", "srm_h4", "srm_h4_null"}
    assert torch.allclose(out["alignment"], torch.ones(2, dtype=torch.float64))
    assert bool((out["alignment_null"] < 0.95).all())
    assert bool((out["log_kurtosis_ratio"] > 0).all())
    assert bool((out["srm_h4"] > out["srm_h4_null"]).all())


def test_rotation_commutation_exact_only_for_isotropic_sgd():
    imp = models.geometric_importance(8, 0.8, dtype=torch.float64)
    kw = dict(sparsity=0.8, importance=imp, steps=60, batch=32, seed=1)
    exact = experiments.rotation_commutation(3, 8, 3, hidden="isotropic_tanh", optimiser="sgd", lr=0.1, **kw)
    assert float(exact.max()) < 1e-12
    adam = experiments.rotation_commutation(3, 8, 3, hidden="isotropic_tanh", optimiser="adam", lr=1e-2, **kw)
    relu = experiments.rotation_commutation(3, 8, 3, hidden="relu", optimiser="sgd", lr=0.1, **kw)
    assert float(adam.min()) > 1e-3 and float(relu.min()) > 1e-3


def test_hidden_layer_reads_pre_and_post_activations():
    gen = torch.Generator().manual_seed(2)
    model = models.ToyModels(2, 6, 3, hidden="tanh", generator=gen)
    x = models.sample_features(torch.tensor([0.5, 0.5]), 6, 16, generator=gen)
    pre = experiments.hidden_layer(model, x, "pre")
    post = experiments.hidden_layer(model, x, "post")
    expected = torch.einsum("nbf,nmf->nbm", x.double(), model.W.detach().double())
    assert pre.dtype == torch.float64 and torch.allclose(pre, expected, atol=1e-6)
    assert torch.allclose(post, torch.tanh(pre), atol=1e-6)
    with pytest.raises(ValueError, match="layer"):
        experiments.hidden_layer(model, x, "output")
    with pytest.raises(ValueError, match="x"):
        experiments.hidden_layer(model, x[:, :, :5], "pre")


def _axis_cloud(n: int, b: int, m: int, seed: int) -> torch.Tensor:
    # every sample on one neuron axis (random axis, random signed length), plus a little noise
    gen = torch.Generator().manual_seed(seed)
    axis = torch.randint(0, m, (n, b), generator=gen)
    length = torch.randn(n, b, generator=gen, dtype=torch.float64)
    cloud = torch.nn.functional.one_hot(axis, m).to(torch.float64) * length[..., None]
    return cloud + 0.02 * torch.randn(n, b, m, generator=gen, dtype=torch.float64)


def test_basis_statistics_see_neuron_axes_and_not_a_gaussian():
    gen = torch.Generator().manual_seed(0)
    axes = experiments.basis_statistics(_axis_cloud(3, 600, 5, 1), generator=gen)
    assert set(axes) == {"pppm", "pppm_null", "kurtosis", "kurtosis_null", "srm_h4", "srm_h4_null"}
    for key in ("pppm", "kurtosis", "srm_h4"):
        assert bool((axes[key] > axes[key + "_null"] + 0.2).all()), key
    gauss = torch.randn(8, 2000, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    iso = experiments.basis_statistics(gauss, generator=gen)
    for key in ("pppm", "kurtosis", "srm_h4"):
        assert abs(float((iso[key] - iso[key + "_null"]).mean())) < 0.05, key


def test_basis_statistics_pppm_is_the_course_pppm_count():
    from isodl.symmetry import pppm

    cloud = _axis_cloud(2, 300, 4, 5)
    out = experiments.basis_statistics(cloud, generator=torch.Generator().manual_seed(0), epsilon=0.7, n_rotations=2)
    for k in range(2):
        kept = len(pppm.privileged_plane_projection(cloud[k], None, 0.7, "comb"))
        assert float(out["pppm"][k]) == pytest.approx(math.log1p(kept))


def test_basis_statistics_deterministic_and_rejects_bad_input():
    cloud = _axis_cloud(2, 100, 3, 7)
    a = experiments.basis_statistics(cloud, generator=torch.Generator().manual_seed(4), n_rotations=3)
    b = experiments.basis_statistics(cloud, generator=torch.Generator().manual_seed(4), n_rotations=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a rotated copy of the cloud is no longer on the neurons: the PPPM excess vanishes
    q = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    rot = experiments.basis_statistics(cloud @ q.T, generator=torch.Generator().manual_seed(4), n_rotations=12)
    assert bool(((a["pppm"] - a["pppm_null"]) > (rot["pppm"] - rot["pppm_null"]) + 0.1).all())
    with pytest.raises(ValueError, match="activations"):
        experiments.basis_statistics(cloud[0], generator=torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        experiments.basis_statistics(cloud, generator=None)
    with pytest.raises(ValueError, match="epsilon"):
        experiments.basis_statistics(cloud, generator=torch.Generator(), epsilon=1.5)
    with pytest.raises(ValueError, match="n_rotations"):
        experiments.basis_statistics(cloud, generator=torch.Generator(), n_rotations=0)


def test_rotated_weights_keeps_the_geometry_and_rotates_the_pre_activations():
    gen = torch.Generator().manual_seed(3)
    model = models.ToyModels(2, 6, 3, hidden="relu", generator=gen, dtype=torch.float64)
    copy = experiments.rotated_weights(model, torch.Generator().manual_seed(1))
    gram = lambda w: w.detach().transpose(-1, -2) @ w.detach()  # noqa: E731
    assert torch.allclose(gram(copy.W), gram(model.W)) and not torch.allclose(copy.W, model.W)
    assert copy.hidden == "relu" and torch.equal(copy.b, model.b)
    with pytest.raises(TypeError, match="generator"):
        experiments.rotated_weights(model, None)


def test_pppm_densities_share_one_extent():
    cloud = _axis_cloud(2, 300, 3, 2)
    q = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    dens = experiments.pppm_densities({"a": cloud[0], "b": 2 * cloud[1]}, {"a": None, "b": q}, epsilon=0.8)
    assert dens["a"].extent == dens["b"].extent == pytest.approx(float((2 * cloud[1]).abs().max()))
    with pytest.raises(ValueError, match="same keys"):
        experiments.pppm_densities({"a": cloud[0]}, {"b": None})


def test_hidden_basis_experiment_arms_keys_and_determinism():
    imp = models.geometric_importance(6, 0.8)
    kw = dict(n_hidden=3, steps=30, batch=32, adam_lr=1e-2, sgd_lr=[0.3, 0.5], seed=2, n_samples=64, n_rotations=3)
    arms = (("relu", "sgd"), ("isotropic_tanh", "adam"))
    a = experiments.hidden_basis_experiment([0.5, 0.9], 2, imp, arms=arms, **kw)
    b = experiments.hidden_basis_experiment([0.5, 0.9], 2, imp, arms=arms, **kw)
    assert list(a) == list(arms)
    keys = {"loss"} | {k + suffix for k in experiments.HIDDEN_STATISTICS for suffix in ("", "_null")}
    assert set(a["relu", "sgd"]) == keys
    assert all(v.shape == (4,) for v in a["relu", "sgd"].values())
    assert all(torch.equal(a[arm][k], b[arm][k]) for arm in arms for k in keys)
    with pytest.raises(ValueError, match="sgd_lr"):
        experiments.hidden_basis_experiment([0.5, 0.9], 2, imp, arms=arms, **{**kw, "sgd_lr": [0.3]})


def test_summarise_hidden_basis_takes_seeds_as_units():
    def one(delta):
        row = {"loss": torch.tensor([1.0, 3.0])}
        for k in experiments.HIDDEN_STATISTICS:
            row[k] = torch.tensor([delta, delta + 2.0])
            row[k + "_null"] = torch.tensor([0.0, 2.0])
        return {("relu", "sgd"): row}

    summary = experiments.summarise_hidden_basis([one(0.1), one(0.3)])
    mean, se = summary["relu", "sgd"]["pppm"]
    assert mean == pytest.approx(0.2) and se == pytest.approx(0.1)  # std 0.1414 / sqrt(2)
    assert summary["relu", "sgd"]["loss"][0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="per_seed"):
        experiments.summarise_hidden_basis([])


def test_load_hidden_basis_reads_what_the_script_writes(tmp_path):
    import json

    path = tmp_path / "hb.json"
    row = {k: [0.1, 0.2] for k in ("loss", "alignment", "alignment_null")}
    path.write_text(json.dumps({"settings": {}, "seeds": [100], "results": [{"relu,sgd": row}]}))
    record, per_seed = experiments.load_hidden_basis(path)
    assert record["seeds"] == [100] and torch.equal(
        per_seed[0]["relu", "sgd"]["loss"], torch.tensor([0.1, 0.2], dtype=torch.float64)
    )
    with pytest.raises(FileNotFoundError, match="superposition_hidden_basis|no results"):
        experiments.load_hidden_basis(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a results file"):
        experiments.load_hidden_basis(tmp_path / "bad.json")


def test_log_sparsity_grid_and_dwell_share():
    grid = experiments.log_sparsity_grid(3, 2.0, 200.0)
    assert [round(1 / (1 - s), 6) for s in grid] == [2.0, 20.0, 200.0]
    # a curve that sticks at 1/2 dwells there longer than at a placebo level it passes through
    sticky = torch.tensor([0.9, 0.7, 0.51, 0.5, 0.49, 0.5, 0.3, 0.2])
    assert experiments.dwell_share(sticky, 0.5) == 0.5 and experiments.dwell_share(sticky, 0.6) == 0.0
    with pytest.raises(ValueError, match="curve"):
        experiments.dwell_share(torch.tensor([]), 0.5)
    with pytest.raises(ValueError, match="highest"):
        experiments.log_sparsity_grid(3, 5.0, 4.0)


def test_load_dims_sweep_rejects_other_files(tmp_path):
    (tmp_path / "bad.json").write_text('{"settings": {}}')
    with pytest.raises(ValueError, match="not a results file"):
        experiments.load_dims_sweep(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="scripts/superposition_dims_sweep.py"):
        experiments.load_dims_sweep(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        experiments.load_dims_sweep(tmp_path / "none.json")
    with pytest.raises(TypeError, match="path must be a file path"):
        experiments.load_dims_sweep(3)
    # the committed files are read by the same checks
    assert {"settings", "sparsities"} <= set(experiments.load_dims_sweep())
    assert experiments.load_hidden_basis()[0]["seeds"]


def test_seed_excess_splits_settings_and_pools():
    row = {"alignment": torch.tensor([1.0, 3.0, 5.0, 7.0]), "alignment_null": torch.ones(4), "loss": torch.ones(4)}
    per_seed = [{("relu", "sgd"): row}, {("relu", "sgd"): {**row, "alignment": row["alignment"] + 1}}]
    by_setting = experiments.seed_excess(per_seed, ("relu", "sgd"), "alignment", n_settings=2)
    assert by_setting.tolist() == [[1.0, 5.0], [2.0, 6.0]]
    assert experiments.seed_excess(per_seed, ("relu", "sgd"), "alignment").tolist() == [[3.0], [4.0]]
    with pytest.raises(KeyError, match="arm"):
        experiments.seed_excess(per_seed, ("tanh", "sgd"), "alignment")
    with pytest.raises(ValueError, match="n_settings"):
        experiments.seed_excess(per_seed, ("relu", "sgd"), "alignment", n_settings=3)
