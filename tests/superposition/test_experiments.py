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
