"""Tests for isodl.superposition.metrics: hand-computed cases, edges and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from isodl.superposition import metrics

D = torch.float64


def test_antipodal_pair_has_dimensionality_one_half():
    W = torch.tensor([[1.0, -1.0]], dtype=D)  # m = 1, F = 2
    assert torch.allclose(metrics.feature_dimensionality(W), torch.tensor([0.5, 0.5], dtype=D))
    assert torch.allclose(metrics.interference(W), torch.tensor([1.0, 1.0], dtype=D))
    assert float(metrics.dimensions_per_feature(W)) == pytest.approx(0.5)
    assert int(metrics.features_represented(W)) == 2


def test_pentagon_has_dimensionality_two_fifths():
    W = metrics.regular_polygon(5, m=3)
    D5 = metrics.feature_dimensionality(W)
    assert torch.allclose(D5, torch.full((5,), 0.4, dtype=D), atol=1e-12)
    assert float(metrics.dimensions_per_feature(W)) == pytest.approx(3 / 5)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 9, 13])
def test_polygon_closed_form_matches_the_measure(k):
    W = metrics.regular_polygon(k, m=2, length=0.7)
    assert torch.allclose(
        metrics.feature_dimensionality(W), torch.full((k,), metrics.polygon_dimensionality(k), dtype=D)
    )


def test_orthogonal_features_and_ignored_features():
    W = torch.zeros(3, 5, dtype=D)
    W[0, 0], W[1, 1], W[2, 2] = 1.0, 1.0, -1.0
    assert torch.equal(metrics.feature_dimensionality(W), torch.tensor([1.0, 1, 1, 0, 0], dtype=D))
    assert torch.equal(metrics.interference(W), torch.zeros(5, dtype=D))
    assert int(metrics.features_represented(W)) == 3
    assert float(metrics.dimensions_per_feature(W)) == 1.0
    assert float(metrics.basis_alignment(W)) == 1.0
    assert torch.equal(metrics.neuron_monosemanticity(W), torch.ones(3, dtype=D))


def test_gram_and_norms_are_batched():
    W = torch.randn(4, 3, 2, 7, generator=torch.Generator().manual_seed(0), dtype=D)
    assert metrics.gram(W).shape == (4, 3, 7, 7)
    assert torch.allclose(torch.diagonal(metrics.gram(W), dim1=-2, dim2=-1), metrics.feature_norms(W) ** 2)
    assert metrics.feature_dimensionality(W).shape == (4, 3, 7)
    assert bool((metrics.feature_dimensionality(W) <= 1 + 1e-12).all())


def test_zero_weights_are_finite_or_documented():
    W = torch.zeros(2, 3, dtype=D)
    assert torch.equal(metrics.feature_dimensionality(W), torch.zeros(3, dtype=D))
    assert torch.equal(metrics.interference(W), torch.zeros(3, dtype=D))
    assert math.isinf(float(metrics.dimensions_per_feature(W)))
    assert math.isnan(float(metrics.basis_alignment(W)))


def test_huge_and_float32_weights_stay_finite():
    W = 1e18 * torch.randn(3, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    assert bool(torch.isfinite(metrics.feature_norms(W)).all())
    W64 = torch.randn(3, 6, generator=torch.Generator().manual_seed(1), dtype=D)
    d32 = metrics.feature_dimensionality(W64.float())
    assert torch.allclose(d32.double(), metrics.feature_dimensionality(W64), atol=1e-5)


def test_basis_alignment_bounds_and_rotation_null():
    gen = torch.Generator().manual_seed(2)
    W = torch.randn(50, 5, 20, generator=gen, dtype=D)
    a = metrics.basis_alignment(W)
    assert bool(((a >= 1 / 5 - 1e-12) & (a <= 1)).all())
    eye = torch.zeros(5, 20, dtype=D)
    eye[range(5), range(5)] = 1.0
    rotated = metrics.rotate_hidden(eye.expand(50, 5, 20), gen)
    assert bool((metrics.basis_alignment(rotated) < 0.9).all())  # a rotation spreads monosemantic features
    # rotate_hidden keeps the Gram matrix (the basis-free geometry)
    assert torch.allclose(metrics.gram(rotated), metrics.gram(eye).expand(50, 20, 20), atol=1e-12)


def test_rotated_alignment_null_averages_out_the_rotation():
    gen = torch.Generator().manual_seed(5)
    eye = torch.zeros(3, 5, 20, dtype=D)
    eye[:, range(5), range(5)] = 1.0
    null = metrics.rotated_alignment_null(eye, gen, n_rotations=400)
    assert null.shape == (3,) and bool((null < 0.8).all())  # monosemantic features: far above their null
    # two draws of the averaged null agree far better than two single rotations do
    a = metrics.rotated_alignment_null(eye, gen, n_rotations=400)
    singles = metrics.basis_alignment(metrics.rotate_hidden(eye.expand(2, 3, 5, 20), gen))
    assert float((a - null).abs().max()) < 0.25 * float((singles[0] - singles[1]).abs().max())
    # a Haar-random W is its own null on average: the excess is centred on zero
    W = metrics.rotate_hidden(torch.randn(400, 5, 20, generator=gen, dtype=D), gen)
    excess = metrics.basis_alignment(W) - metrics.rotated_alignment_null(W, gen, n_rotations=50)
    assert abs(float(excess.mean())) < 4 * float(excess.std()) / 20
    with pytest.raises(ValueError, match="n_rotations"):
        metrics.rotated_alignment_null(eye, gen, n_rotations=0)


def test_preferred_share_against_placebo_values():
    d = torch.tensor([0.5, 0.51, 1.0, 0.3, 0.45], dtype=D)
    assert metrics.preferred_share(d, (1.0, 0.5)) == pytest.approx(3 / 5)
    assert metrics.preferred_share(d, (0.45,)) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="tolerance"):
        metrics.preferred_share(d, (0.5,), tolerance=0.0)
    with pytest.raises(ValueError, match="at least one"):
        metrics.preferred_share(torch.zeros(0, dtype=D), (0.5,))


def test_coordinate_kurtosis():
    gen = torch.Generator().manual_seed(3)
    gauss = torch.randn(200000, 2, generator=gen, dtype=D)
    assert torch.allclose(metrics.coordinate_kurtosis(gauss), torch.tensor([3.0, 3.0], dtype=D), atol=0.1)
    sparse = torch.zeros(1000, 1, dtype=D)
    sparse[:10] = 1.0  # active 1 % of the time: kurtosis (1 - 3p + 3p^2) / (p (1 - p)) ~ 98
    p = 0.01
    assert float(metrics.coordinate_kurtosis(sparse)) == pytest.approx((1 - 3 * p + 3 * p * p) / (p * (1 - p)))
    assert math.isnan(float(metrics.coordinate_kurtosis(torch.zeros(5, 1, dtype=D))))


def test_recovered_features_and_output_rank():
    eye = torch.eye(4, dtype=D)
    assert int(metrics.recovered_features(eye)) == 4
    half = eye.clone()
    half[3, 3] = 0.5  # error 0.25 > 0.1
    assert int(metrics.recovered_features(half)) == 3
    gen = torch.Generator().manual_seed(4)
    low = torch.randn(30, 3, generator=gen, dtype=D) @ torch.randn(3, 10, generator=gen, dtype=D)
    assert int(metrics.output_rank(low)) == 3
    assert int(metrics.output_rank(torch.zeros(5, 4, dtype=D))) == 0


def test_nearest_preferred():
    d = torch.tensor([1.0, 0.52, 0.4, 0.1], dtype=D)
    assert torch.allclose(metrics.nearest_preferred(d), torch.tensor([0.0, 0.02, 0.0, 1 / 3 - 0.1], dtype=D))


@pytest.mark.parametrize(
    ("call", "error", "word"),
    [
        (lambda: metrics.feature_dimensionality(torch.ones(3)), ValueError, "W must have shape"),
        (lambda: metrics.feature_norms([[1.0]]), TypeError, "W must be"),
        (lambda: metrics.gram(torch.ones(2, 2, dtype=torch.int64)), TypeError, "W must be a floating"),
        (lambda: metrics.interference(torch.tensor([[float("nan"), 1.0]])), ValueError, "W contains NaN"),
        (lambda: metrics.features_represented(torch.ones(2, 2), threshold=-1.0), ValueError, "threshold"),
        (lambda: metrics.polygon_dimensionality(0), ValueError, "k must be >= 1"),
        (lambda: metrics.regular_polygon(3, m=1), ValueError, "k must be 1 or 2"),
        (lambda: metrics.coordinate_kurtosis(torch.ones(1, 3)), ValueError, "h must have shape"),
        (lambda: metrics.rotate_hidden(torch.ones(2, 2), 0), TypeError, "generator"),
        (lambda: metrics.recovered_features(torch.ones(3, 4)), ValueError, "responses must have shape"),
        (lambda: metrics.recovered_features(torch.eye(3), tolerance=0.0), ValueError, "tolerance"),
        (lambda: metrics.output_rank(torch.ones(3)), ValueError, "outputs must have shape"),
        (lambda: metrics.nearest_preferred(torch.ones(2), values=[]), ValueError, "values"),
    ],
)
def test_bad_input_names_the_argument(call, error, word):
    with pytest.raises(error, match=word):
        call()
