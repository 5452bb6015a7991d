"""Tests of isodl.symmetry.srm: the Spotlight Resonance Method, its isotropic baseline and Thomson bases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from isodl import exercises
from isodl.core.activations import random_orthogonal
from isodl.core.data import isotropic_gaussian, uniform_sphere
from isodl.core.ops import unit_rows
from isodl.symmetry import checks, srm
from isodl.symmetry.srm import (
    SRMResult,
    binomial_std,
    cap_fraction,
    cone_count,
    pair_indices,
    plane_pairs,
    spotlight_resonance,
    srm_angles,
    thomson_basis,
    thomson_energy,
    to_reference_orientation,
)

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# --------------------------------------------------------------------------- a literal implementation


def matrix_exp_srm(activations, basis, epsilon, n_angles, pairs="perm", signed=False, reference_sweep=False):
    """SRM by rotating the probe with the matrix exponential of each plane's generator (slow, direct).

    The unit-speed generator of the plane of b_i, b_j is
    G = (b_j b_i^T - b_i b_j^T) / sin(alpha_ij); exp(theta G) b_i turns b_i towards +b_j.
    With ``reference_sweep`` the generator's sign is flipped (the author's code turns towards -b_j).
    """
    b = basis / basis.norm(dim=1, keepdim=True)
    a = unit_rows(activations)
    theta = srm_angles(n_angles)
    rows = []
    for i, j in pair_indices(b.shape[0], pairs).tolist():
        g = float(b[i] @ b[j])
        if 1 - abs(g) < 1e-6:
            continue
        gen = (torch.outer(b[j], b[i]) - torch.outer(b[i], b[j])) / math.sqrt(1 - g * g)
        if reference_sweep:
            gen = -gen
        probes = torch.linalg.matrix_exp(theta[:, None, None] * gen) @ b[i]  # [A, n]
        dots = a @ probes.T
        counts = (dots >= epsilon).sum(0)
        if signed:
            counts = counts - (-dots >= epsilon).sum(0)
        rows.append(counts.to(F64) / a.shape[0])
    return torch.stack(rows)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("pairs", ["perm", "comb"])
@pytest.mark.parametrize("signed", [False, True])
def test_agrees_with_matrix_exponential_on_non_orthogonal_bases(pairs, signed):
    for seed in range(2):
        n, k = 5, 6
        acts = randn(300, n, seed=seed) + 0.3 * randn(1, n, seed=seed + 100)  # not centred
        acts[:7] = 0.0  # zero rows
        basis = randn(k, n, seed=seed + 10) * (1 + torch.rand(k, 1, generator=torch.Generator().manual_seed(seed)))
        for eps in (-0.4, 0.0, 0.35, 0.8):
            expected = matrix_exp_srm(acts, basis, eps, 40, pairs, signed)
            for method in srm.METHODS:
                angles, values, idx = spotlight_resonance(acts, basis, eps, 40, pairs, signed, method=method)
                assert values.shape == expected.shape == (idx.shape[0], 40)
                assert (values - expected).abs().max() <= 1e-12, (method, eps)
                assert torch.equal(idx, pair_indices(k, pairs))


def test_arcs_and_dense_are_identical_even_on_ties():
    eye = torch.eye(4, dtype=F64)
    gen = torch.Generator().manual_seed(1)
    relu = torch.relu(torch.randn(300, 4, generator=gen, dtype=F64))  # many exact zeros
    relu[:8] = 3.0 * eye.repeat(2, 1)  # rows exactly on the axes
    thomson = thomson_basis(6, 4)
    for acts, basis in ((relu, eye), (relu, thomson), (randn(200, 4, seed=3).float(), eye)):
        for eps in (-1.0, -0.5, 0.0, 0.5, 1.0):
            for n_angles in (2, 7, 64):
                for signed in (False, True):
                    a = spotlight_resonance(acts, basis, eps, n_angles, "perm", signed, method="arcs")
                    d = spotlight_resonance(acts, basis, eps, n_angles, "perm", signed, method="dense")
                    assert torch.equal(a.values, d.values), (eps, n_angles, signed)


def test_chunking_does_not_change_the_result(monkeypatch):
    acts, basis = randn(250, 6, seed=4), randn(8, 6, seed=5)
    full = {m: spotlight_resonance(acts, basis, 0.3, 36, signed=True, method=m).values for m in srm.METHODS}
    monkeypatch.setattr(srm, "_ARC_CHUNK", 300)
    monkeypatch.setattr(srm, "_DENSE_CHUNK", 300 * 36 * 3)
    for m in srm.METHODS:
        assert torch.equal(spotlight_resonance(acts, basis, 0.3, 36, signed=True, method=m).values, full[m])


def test_float32_activations_match_float64_closely():
    acts = randn(2000, 6, seed=6)
    r64 = spotlight_resonance(acts, torch.eye(6), 0.5, 60)
    r32 = spotlight_resonance(acts.float(), torch.eye(6), 0.5, 60)
    assert r32.values.dtype == F64
    assert (r64.values - r32.values).abs().max() <= 3 / 2000  # at most a few ties flip


def test_result_object():
    acts = randn(100, 3, seed=7)
    res = spotlight_resonance(acts, torch.eye(3), 0.5, 8, "comb")
    angles, values, idx = res
    assert isinstance(res, SRMResult) and res.angles is angles and res.values is values and res.pairs is idx
    torch.testing.assert_close(angles, torch.arange(8, dtype=F64) * math.pi / 4)
    assert idx.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert res.skipped.shape == (0, 2) and res.epsilon == 0.5 and not res.signed
    torch.testing.assert_close(res.mean(), values.mean(0))
    assert "3, 8" in repr(res)


# --------------------------------------------------------------------------- geometry of the sweep


def test_sign_convention_probe_reaches_plus_bj_at_quarter_turn():
    # A single activation on +b_2: in the plane (b_1, b_2) the course's probe meets it at theta = pi / 2.
    acts = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64)
    _, values, idx = spotlight_resonance(acts, torch.eye(3), 0.99, 8, "perm")
    row = values[idx.tolist().index([0, 1])]
    assert row.tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    # Non-orthogonal pair at angle alpha: +b_j sits at theta = alpha.
    alpha = 2 * math.pi / 8 * 3  # 135 degrees, on the grid
    basis = torch.tensor([[1.0, 0.0], [math.cos(alpha), math.sin(alpha)]], dtype=F64)
    _, values, _ = spotlight_resonance(basis[1:], basis, 0.99, 8, "comb")
    assert values[0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]


def test_reference_orientation_is_the_mirror_image():
    acts, basis = randn(300, 4, seed=8), randn(5, 4, seed=9)
    ours = spotlight_resonance(acts, basis, 0.4, 40).values
    theirs = matrix_exp_srm(acts, basis, 0.4, 40, reference_sweep=True)
    assert (to_reference_orientation(ours) - theirs).abs().max() <= 1e-12
    assert torch.equal(to_reference_orientation(to_reference_orientation(ours)), ours)


def test_perm_pair_is_a_reflection_for_orthonormal_bases():
    # s_ji(theta) = cos(theta) b_j + sin(theta) b_i = s_ij(pi/2 - theta): index k -> (A/4 - k) mod A.
    q = random_orthogonal(5, seed=10)
    acts = torch.tanh(2 * randn(3000, 5, seed=11))
    n_angles = 64
    angles, values, idx = spotlight_resonance(acts, q, 0.5, n_angles, "perm")
    lookup = {tuple(p): r for p, r in zip(idx.tolist(), values)}
    mirror = torch.remainder(n_angles // 4 - torch.arange(n_angles), n_angles)
    for (i, j), row in lookup.items():
        assert (lookup[(j, i)] - row[mirror]).abs().max() <= 1e-12


def test_basis_follows_the_rotation_exactly():
    # SRM of Q^T tanh(Q x) against basis Q equals SRM of tanh(z) against I, with z = Q x.
    q = random_orthogonal(6, seed=12)
    z = randn(1500, 6, seed=13)
    rotated_outputs = torch.tanh(z) @ q  # rows: Q^T tanh(z)
    a = spotlight_resonance(rotated_outputs, q, 0.6, 36).values
    b = spotlight_resonance(torch.tanh(z), torch.eye(6), 0.6, 36).values
    assert (a - b).abs().max() <= 1e-12


def test_zero_rows_count_exactly_when_epsilon_is_not_positive():
    zeros = torch.zeros(10, 3, dtype=F64)
    for eps, expected in ((-0.3, 1.0), (0.0, 1.0), (1e-9, 0.0), (0.7, 0.0)):
        for method in srm.METHODS:
            values = spotlight_resonance(zeros, torch.eye(3), eps, 12, method=method).values
            assert torch.all(values == expected)
            signed = spotlight_resonance(zeros, torch.eye(3), eps, 12, signed=True, method=method).values
            assert torch.all(signed == 0)


def test_max_planes_is_a_seeded_subset():
    acts, basis = randn(200, 5, seed=14), randn(6, 5, seed=15)
    full = spotlight_resonance(acts, basis, 0.3, 20)
    sub = spotlight_resonance(acts, basis, 0.3, 20, max_planes=7, seed=3)
    again = spotlight_resonance(acts, basis, 0.3, 20, max_planes=7, seed=3)
    assert sub.values.shape == (7, 20) and torch.equal(sub.pairs, again.pairs)
    rows = {tuple(p): r for p, r in zip(full.pairs.tolist(), full.values)}
    for p, r in zip(sub.pairs.tolist(), sub.values):
        assert torch.equal(rows[tuple(p)], r)
    assert not torch.equal(sub.pairs, spotlight_resonance(acts, basis, 0.3, 20, max_planes=7, seed=4).pairs)


# --------------------------------------------------------------------------- isotropic baseline


def test_cap_fraction_values():
    # The spec's table (checked there by Monte Carlo).
    table = {
        (4, 0.5): 0.196, (4, 0.75): 0.072, (4, 0.9): 0.019,
        (8, 0.5): 0.085, (8, 0.75): 0.0100, (8, 0.85): 0.0019,
        (16, 0.6): 0.0054, (16, 0.75): 2.6e-4, (16, 0.9): 4.3e-7,
    }  # fmt: skip
    for (n, eps), value in table.items():
        assert cap_fraction(n, eps) == pytest.approx(value, rel=0.03)
    for eps in (-0.7, 0.0, 0.3, 1.0):
        assert cap_fraction(2, eps) == pytest.approx(math.acos(eps) / math.pi, abs=1e-14)
    for n in (3, 8):
        assert cap_fraction(n, 0.0) == pytest.approx(0.5)
        assert cap_fraction(n, -0.4) == pytest.approx(1 - cap_fraction(n, 0.4))
        assert cap_fraction(n, -1.0) == 1.0 and cap_fraction(n, 1.0) == 0.0
    assert cap_fraction(3, 0.5) == pytest.approx(0.25)  # Archimedes: the cap's area is linear in height


def test_cap_fraction_matches_monte_carlo():
    pts = uniform_sphere(200_000, 6, seed=16)
    for eps in (-0.2, 0.3, 0.6):
        frac = float((pts[:, 0] >= eps).double().mean())
        assert abs(frac - cap_fraction(6, eps)) < 4 * binomial_std(cap_fraction(6, eps), 200_000)


def test_isotropic_gaussian_is_flat_at_the_cap_fraction():
    n, eps, n_samples = 8, 0.6, 20_000
    x = isotropic_gaussian(n_samples, n, seed=17)
    res = spotlight_resonance(x, torch.eye(n, dtype=F64), eps, 72, "comb")
    level, std = cap_fraction(n, eps), binomial_std(cap_fraction(n, eps), n_samples)
    assert (res.values - level).abs().max() < 5 * std  # every plane, every angle
    assert abs(float(res.values.mean()) - level) < 3 * std
    # A random non-orthogonal basis changes nothing for an isotropic cloud.
    other = spotlight_resonance(x, randn(6, n, seed=18), eps, 36)
    assert (other.values - level).abs().max() < 5 * std


# --------------------------------------------------------------------------- the synthetic signatures


@pytest.fixture(scope="module")
def gaussian8():
    return isotropic_gaussian(20_000, 8, seed=19)


def test_signature_tanh_dips_on_axes_peaks_on_diagonals(gaussian8):
    res = spotlight_resonance(torch.tanh(gaussian8), torch.eye(8, dtype=F64), 0.75, 72, "comb")
    mean = res.mean()
    axes = mean[[0, 18, 36, 54]]  # 0, pi/2, pi, 3pi/2
    diagonals = mean[[9, 27, 45, 63]]  # odd multiples of pi/4
    assert axes.max() < 0.0008 and diagonals.min() > 0.0022
    assert mean.max() < cap_fraction(8, 0.75)  # everything below the isotropic level
    assert int(mean.argmax()) % 18 == 9


def test_signature_relu_is_one_sided(gaussian8):
    for fn in (torch.relu, lambda z: torch.nn.functional.leaky_relu(z, 0.01)):
        res = spotlight_resonance(fn(gaussian8), torch.eye(8, dtype=F64), 0.75, 72, "comb")
        mean = res.mean()
        assert 0.065 < float(mean[0]) < 0.085 and 0.065 < float(mean[18]) < 0.085  # +b_i at 0, +b_j at pi/2
        assert float(mean[9]) > 0.045  # between them, inside the positive quadrant
        # the maxima sit inside the quadrant (near 15 and 75 degrees), above both the axes and 45 degrees
        peak = int(mean[:19].argmax())  # 5-degree grid, 0 to 90 degrees
        assert 1 <= peak <= 6 or 12 <= peak <= 17, peak
        assert float(mean[:19].max()) > 1.05 * max(float(mean[0]), float(mean[18])) > 1.2 * float(mean[9])
        far = mean[30:61]  # the half circle around -b_i (pi) and -b_j (3 pi / 2)
        assert float(far.max()) < 0.001
        signed = spotlight_resonance(fn(gaussian8), torch.eye(8, dtype=F64), 0.75, 72, "comb", signed=True).mean()
        assert float(signed.max()) > 0.06  # polarity shows in the signed SRM


def test_signature_identity_flat_and_signed_tanh_about_zero(gaussian8):
    level = cap_fraction(8, 0.75)
    std = binomial_std(level, gaussian8.shape[0])
    flat = spotlight_resonance(gaussian8, torch.eye(8, dtype=F64), 0.75, 72, "comb").values
    assert (flat - level).abs().max() < 5 * std
    signed = spotlight_resonance(torch.tanh(gaussian8), torch.eye(8, dtype=F64), 0.75, 72, "comb", signed=True)
    assert signed.values.abs().max() < 5 * binomial_std(0.003, gaussian8.shape[0]) * math.sqrt(2)
    # Exactly antisymmetric for a centrally symmetric cloud: use x and -x together.
    sym = torch.cat([torch.tanh(gaussian8[:5000]), -torch.tanh(gaussian8[:5000])])
    assert torch.all(spotlight_resonance(sym, torch.eye(8, dtype=F64), 0.75, 72, "comb", signed=True).values == 0)


# --------------------------------------------------------------------------- Thomson bases


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_thomson_simplex(n):
    b = thomson_basis(n + 1, n, seed=n)
    gram = b @ b.T
    off = gram[~torch.eye(n + 1, dtype=torch.bool)]
    torch.testing.assert_close(b.norm(dim=1), torch.ones(n + 1, dtype=F64))
    assert (off + 1 / n).abs().max() < 1e-8


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_thomson_cross_polytope(n):
    b = thomson_basis(2 * n, n, seed=0)
    gram = b @ b.T - torch.eye(2 * n, dtype=F64)
    # Every vector has exactly one antipode; all other pairs are orthogonal.
    assert torch.all((gram + 1).abs().min(dim=1).values < 1e-8)
    assert torch.all(((gram + 1).abs() < 1e-8).sum(dim=1) == 1)
    others = gram[(gram + 1).abs() >= 1e-8]
    assert others.abs().max() < 1e-8


def test_thomson_deterministic_and_lower_energy():
    b = thomson_basis(12, 4, seed=5)
    assert torch.equal(b, thomson_basis(12, 4, seed=5))
    assert not torch.equal(b, thomson_basis(12, 4, seed=6))
    start = randn(12, 4, seed=0)
    assert thomson_energy(b) < thomson_energy(start)
    assert thomson_basis(5, 4, dtype=torch.float32).dtype == torch.float32
    b[0, 0] = 99.0  # the cache hands out copies
    assert thomson_basis(12, 4, seed=5)[0, 0] != 99.0


def test_antipodal_pairs_are_skipped_and_reported():
    b = thomson_basis(6, 3)
    acts = randn(100, 3, seed=20)
    with pytest.warns(UserWarning, match="skipped 6 pair"):
        res = spotlight_resonance(acts, b, 0.5, 12, "perm")
    assert res.skipped.shape == (6, 2) and res.values.shape == (24, 12)
    gram = b @ b.T
    assert all(abs(float(gram[i, j]) + 1) < 1e-8 for i, j in res.skipped.tolist())
    kept, skipped, _ = plane_pairs(b, "comb")
    assert kept.shape == (12, 2) and skipped.shape == (3, 2)


# --------------------------------------------------------------------------- cone count


def test_cone_count():
    acts = torch.tensor([[3.0, 0.0], [0.0, 0.5], [0.0, 0.0], [-1.0, -1.0]], dtype=F64)
    probes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.6, -0.8]], dtype=F64)
    torch.testing.assert_close(cone_count(acts, probes, 1.0), torch.tensor([0.25, 0.25, 0.0], dtype=F64))
    torch.testing.assert_close(cone_count(acts, probes, 0.0), torch.tensor([0.75, 0.75, 0.5], dtype=F64))
    assert cone_count(acts, probes[0], 0.5).shape == ()
    # SRM is the cone count along the sweep.
    q = randn(3, 2, seed=21)
    res = spotlight_resonance(randn(50, 2, seed=22), q, 0.3, 16, "comb")
    b = q / q.norm(dim=1, keepdim=True)
    i, j = res.pairs[0].tolist()
    perp = unit_rows(b[j] - (b[j] @ b[i]) * b[i])
    probes = torch.cos(res.angles)[:, None] * b[i] + torch.sin(res.angles)[:, None] * perp
    torch.testing.assert_close(cone_count(randn(50, 2, seed=22), probes, 0.3), res.values[0])


def cone_correct(activations, probes, epsilon):
    norms = activations.norm(dim=1, keepdim=True)
    a = activations / torch.where(norms > 0, norms, torch.ones_like(norms))
    return (a @ probes.T >= epsilon).double().mean(dim=0)


def cone_stub(activations, probes, epsilon):
    raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")


def cone_strict(activations, probes, epsilon):
    norms = activations.norm(dim=1, keepdim=True)
    a = activations / torch.where(norms > 0, norms, torch.ones_like(norms))
    return (a @ probes.T > epsilon).double().mean(dim=0)


def cone_raw(activations, probes, epsilon):
    return (activations @ probes.T >= epsilon).double().mean(dim=0)


def cone_counts(activations, probes, epsilon):
    return cone_correct(activations, probes, epsilon) * activations.shape[0]


def cone_nan_rows(activations, probes, epsilon):
    a = activations / activations.norm(dim=1, keepdim=True)
    return (a @ probes.T >= epsilon).double().mean(dim=0)


def cone_wrong_axis(activations, probes, epsilon):
    return cone_correct(activations, probes, epsilon)[None].expand(activations.shape[0], -1)


def test_check_cone_count_passes_reference_and_fails_mistakes():
    assert exercises.CHECKS["cone_count"] is checks.check_cone_count
    assert checks.check_cone_count(cone_correct, verbose=False)
    assert checks.check_cone_count(cone_count, verbose=False)
    expectations = {
        cone_stub: "not done yet",
        cone_strict: ">= epsilon",
        cone_raw: "normalise",
        cone_counts: "divide the count",
        cone_nan_rows: "zero activation row",
        cone_wrong_axis: "one fraction per probe",
    }
    for fn, words in expectations.items():
        result = checks.check_cone_count(fn, verbose=False)
        assert not result, fn.__name__
        assert words in result.message, (fn.__name__, result.message)


# --------------------------------------------------------------------------- properties and bad input


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 6),
    k=st.integers(2, 7),
    eps=st.floats(-1, 1),
    n_angles=st.integers(2, 40),
    seed=st.integers(0, 1000),
    signed=st.booleans(),
)
def test_srm_property(n, k, eps, n_angles, seed, signed):
    acts = randn(60, n, seed=seed)
    basis = randn(k, n, seed=seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = spotlight_resonance(acts, basis, eps, n_angles, signed=signed)
        d = spotlight_resonance(acts, basis, eps, n_angles, signed=signed, method="dense")
    assert torch.equal(a.values, d.values)
    lo = -1.0 if signed else 0.0
    assert a.values.min() >= lo and a.values.max() <= 1.0
    # Multiplying the activations by positive numbers changes nothing.
    scaled = spotlight_resonance(
        acts * torch.rand(60, 1, dtype=F64).add(0.1) * 100, basis, eps, n_angles, signed=signed
    )
    assert (scaled.values - a.values).abs().max() <= 2 / 60  # ties may flip


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"epsilon": 1.5}, ValueError, "epsilon"),
        ({"epsilon": -1.01}, ValueError, "epsilon"),
        ({"epsilon": float("nan")}, ValueError, "epsilon"),
        ({"basis": torch.eye(4)}, ValueError, "dimension mismatch"),
        ({"basis": torch.ones(1, 3)}, ValueError, "two usable"),
        ({"basis": torch.tensor([[1.0, 0, 0], [-2.0, 0, 0]])}, ValueError, "two usable"),
        ({"basis": torch.tensor([[1.0, 0, 0], [0.0, 0, 0]])}, ValueError, "zero"),
        ({"basis": torch.eye(3).int()}, TypeError, "basis"),
        ({"activations": torch.tensor([[float("nan"), 0, 0]])}, ValueError, "NaN"),
        ({"activations": torch.tensor([[float("inf"), 0, 0]])}, ValueError, "NaN or infinite"),
        ({"activations": torch.ones(3)}, ValueError, "activations"),
        ({"activations": torch.ones(0, 3)}, ValueError, "activations"),
        ({"activations": torch.ones(2, 3, dtype=torch.int64)}, TypeError, "activations"),
        ({"pairs": "all"}, ValueError, "pairs"),
        ({"n_angles": 1}, ValueError, "n_angles"),
        ({"n_angles": 10.0}, TypeError, "n_angles"),
        ({"signed": "yes"}, TypeError, "signed"),
        ({"method": "fast"}, ValueError, "method"),
        ({"max_planes": 0}, ValueError, "max_planes"),
    ],
)
def test_bad_input_is_reported(kwargs, error, word):
    args = {"activations": torch.ones(4, 3), "basis": torch.eye(3), "epsilon": 0.5}
    args.update(kwargs)
    with pytest.raises(error, match=word):
        spotlight_resonance(**args)


@pytest.mark.parametrize(
    ("call", "error", "word"),
    [
        (lambda: cap_fraction(1, 0.5), ValueError, "n"),
        (lambda: cap_fraction(3, 2.0), ValueError, "epsilon"),
        (lambda: thomson_basis(0, 3), ValueError, "k"),
        (lambda: thomson_basis(3, 1), ValueError, "k"),
        (lambda: thomson_basis(3, 2, dtype=torch.int32), TypeError, "dtype"),
        (lambda: cone_count(torch.ones(3, 2), torch.ones(3, 3), 0.5), ValueError, "dimension mismatch"),
        (lambda: cone_count(torch.ones(3, 2), torch.ones(2), 3.0), ValueError, "epsilon"),
        (lambda: to_reference_orientation(torch.ones(2, 2, 2)), ValueError, "values"),
        (lambda: pair_indices(3, "both"), ValueError, "pairs"),
        (lambda: binomial_std(1.5, 10), ValueError, "fraction"),
    ],
)
def test_other_bad_inputs(call, error, word):
    with pytest.raises(error, match=rf"\b{word}\b"):
        call()


def test_numpy_inputs():
    acts = np.random.default_rng(0).standard_normal((50, 3))
    res = spotlight_resonance(acts, np.eye(3), 0.5, 10)
    assert res.values.shape == (6, 10)


# --------------------------------------------------------------------------- the slow reference and the figures


def test_rotation_matrix_reference_matches():
    acts, basis = randn(300, 5, seed=30), randn(6, 5, seed=31)
    for signed in (False, True):
        ref = srm.rotation_matrix_srm(acts, basis, 0.3, 24, "comb", signed)
        fast = spotlight_resonance(acts, basis, 0.3, 24, "comb", signed)
        assert (ref.values - fast.values).abs().max() <= 1e-12
        assert torch.equal(ref.pairs, fast.pairs) and ref.signed == signed


def test_figures_of_notebooks_01_and_02():
    from matplotlib.figure import Figure

    from isodl.symmetry import plots as sym_plots

    assert isinstance(sym_plots.plot_rotation_symmetry(0.3, 1.5, "relu"), Figure)
    assert isinstance(sym_plots.plot_jacobian_axes(1.0, "gelu", n_points=5), Figure)
    e, i = sym_plots.rotation_gaps(math.pi / 2, 2.0, "tanh")
    assert e < 1e-12 and i < 1e-12
    e, i = sym_plots.rotation_gaps(0.5, 2.0, "leaky_relu")
    assert e > 0.05 and i < 1e-12
    res = {"a": spotlight_resonance(randn(200, 3, seed=32), torch.eye(3), 0.5, 16, "comb")}
    res["b"] = spotlight_resonance(randn(200, 3, seed=33), torch.eye(3), 0.5, 16, "comb", signed=True)
    assert isinstance(sym_plots.plot_srm_curves(res, baseline=cap_fraction(3, 0.5)), Figure)
    assert isinstance(sym_plots.plot_srm_curves({"a": res["a"]}, baseline=0.25, enrichment=True), Figure)
    assert isinstance(sym_plots.plot_cap_fraction((2, 3), epsilon=0.2), Figure)
    assert isinstance(sym_plots.plot_srm_explorer("relu", 0.4, "b2 → b1", 1.0, True), Figure)
    assert isinstance(sym_plots.plot_benchmark({"slow": 2.0, "fast": 0.1}), Figure)
    x = sym_plots.explorer_data("isotropic tanh", n=4, n_samples=50)
    assert x.shape == (50, 4) and (x.norm(dim=1) < 1).all()
    with pytest.raises(ValueError, match="plane"):
        sym_plots.plot_srm_explorer(plane="b1 → b1")
    with pytest.raises(ValueError, match="plane"):
        sym_plots.plot_srm_explorer(plane="first")
    with pytest.raises(ValueError, match="activation"):
        sym_plots.plot_rotation_symmetry(activation="sigmoid")
    with pytest.raises(ValueError, match="baseline"):
        sym_plots.plot_srm_curves(res, enrichment=True)
    with pytest.raises(TypeError, match="results"):
        sym_plots.plot_srm_curves({})
    with pytest.raises(ValueError, match="gain"):
        sym_plots.plot_rotation_symmetry(gain=0.0)


def test_explorer_widget_callbacks():
    from isodl.core import widgets
    from isodl.symmetry import plots as sym_plots

    w = widgets.interactive_figure(
        sym_plots.plot_srm_explorer,
        headless=True,
        activation=list(sym_plots.EXPLORER_ACTIVATIONS),
        epsilon=(-0.5, 0.95, 0.05),
    )
    fig = w.update(activation="relu", epsilon=0.3)
    assert fig is w.last_figure and "relu" in fig.axes[0].get_title()


def test_result_pickles_and_half_precision_inputs():
    import copy
    import pickle

    res = spotlight_resonance(randn(60, 3, seed=34).half(), torch.eye(3), 0.5, 8)
    again = pickle.loads(pickle.dumps(res))
    assert torch.equal(again.values, res.values) and again.epsilon == 0.5 and again.skipped.shape == (0, 2)
    assert copy.deepcopy(res).signed is False
