"""Streaming reductions of SRM and PPPM (isodl.symmetry.srm.spotlight_resonance_stream, pppm.pppm_density(stream=True))."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from isodl.core.activations import random_orthogonal
from isodl.symmetry import pppm, srm
from isodl.symmetry.representations import srm_harmonic
from isodl.symmetry.srm import spotlight_resonance, spotlight_resonance_stream, srm_harmonics

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[2]


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def counts_of(values, n):
    return torch.round(values * n).to(torch.int64)


def assert_stream_equals_full(acts, basis, eps, n_angles, pairs, signed, **kw):
    full = spotlight_resonance(acts, basis, eps, n_angles, pairs, signed)
    n, p = acts.shape[0], full.values.shape[0]
    res = spotlight_resonance_stream(acts, basis, eps, n_angles, pairs, signed, keep_planes=torch.arange(p), **kw)
    cnt = counts_of(full.values, n)
    assert torch.equal(res.pairs, full.pairs)
    assert torch.equal(res.kept_values, full.values)  # identical counts, plane by plane
    assert torch.equal(res.count_sum, cnt.sum(0))
    assert torch.equal(res.total, cnt.sum(1))
    assert torch.equal(res.max_count, cnt.amax(1)) and torch.equal(res.min_count, cnt.amin(1))
    assert torch.equal(res.peak_index, torch.argmax(cnt, dim=1))
    torch.testing.assert_close(res.mean, full.mean(), rtol=0, atol=1e-15)
    return full, res


# --------------------------------------------------------------------------- SRM: streamed == full


BASES = {
    "standard": lambda n: torch.eye(n, dtype=F64),
    "rotated": lambda n: random_orthogonal(n, seed=n),  # orthonormal up to rounding: |g| ~ 1e-16
    "random": lambda n: randn(n + 1, n, seed=n),  # non-orthogonal pairs: never mirrored
    "thomson": lambda n: srm.thomson_basis(n + 2, n, seed=0),  # mostly non-orthogonal
}


@pytest.mark.parametrize(
    "basis_name, n", [("standard", 5), ("standard", 8), ("rotated", 6), ("random", 5), ("thomson", 6)]
)
@pytest.mark.parametrize("pairs", srm.PAIRS)
def test_stream_equals_full(basis_name, pairs, n):
    acts = torch.tanh(2 * randn(100, n, seed=n))
    basis = BASES[basis_name](n)
    for eps, n_angles, signed in [(0.5, 36, False), (0.0, 24, True), (0.85, 37, True)]:
        _, res = assert_stream_equals_full(acts, basis, eps, n_angles, pairs, signed, chunk_planes=5)
        if basis_name == "thomson":
            assert res.mirrored <= res.n_planes // 2
            continue
        orthonormal = basis_name in ("standard", "rotated")
        want = res.n_planes // 2 if (orthonormal and pairs == "perm" and n_angles % 4 == 0) else 0
        assert res.mirrored == want, (basis_name, pairs, eps, n_angles)


def test_mirror_is_exact_on_ties():
    # Samples on grid angles of basis planes and thresholds on grid cosines put arc ends exactly on
    # grid points, where the arc method checks samples exactly; the mirrored planes must redo them.
    n, n_angles = 5, 24
    gen = torch.Generator().manual_seed(1)
    rows = []
    for m in range(120):
        i, j = torch.randperm(n, generator=gen)[:2].tolist()
        k = int(torch.randint(0, n_angles, (1,), generator=gen))
        x = torch.zeros(n, dtype=F64)
        x[i], x[j] = math.cos(2 * math.pi * k / n_angles), math.sin(2 * math.pi * k / n_angles)
        if m % 3 == 0:
            x[m % n] += 0.3
        rows.append(x)
    acts = torch.stack(rows)
    calls = []
    original = srm._arc_ends

    def counting(*args):
        calls.append(args[0].shape[0])
        return original(*args)

    for basis in (torch.eye(n, dtype=F64), random_orthogonal(n, seed=3)):
        for eps, signed in [
            (math.cos(2 * math.pi * 3 / n_angles), True),
            (-math.cos(2 * math.pi * 5 / n_angles), False),
        ]:
            assert_stream_equals_full(acts, basis, eps, n_angles, "perm", signed, chunk_planes=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(srm, "_arc_ends", counting)
        spotlight_resonance_stream(acts, torch.eye(n), math.cos(2 * math.pi * 3 / n_angles), n_angles, chunk_planes=6)
    assert len(calls) > 4  # 4 chunks: the extra calls are the exact recomputations of mirrored samples


def test_reflection_index_map():
    # s_ji(theta) = s_ij(pi/2 - theta): the curve of (j, i) at index k is the curve of (i, j) at (A/4 - k) mod A.
    acts = torch.tanh(2 * randn(400, 4, seed=2))
    full = spotlight_resonance(acts, torch.eye(4), 0.5, 40)
    rows = {tuple(p): r for p, r in zip(full.pairs.tolist(), full.values)}
    mirror = torch.remainder(10 - torch.arange(40), 40)
    for (i, j), row in rows.items():
        assert torch.equal(rows[(j, i)], row[mirror])
    # ... which spotlight_resonance_stream applies by flip-and-roll.
    x = torch.arange(80).view(2, 40)
    assert torch.equal(x[:, mirror], torch.roll(x.flip(1), 40 // 4 + 1, 1))


def test_sparse_and_dense_candidate_paths_agree(monkeypatch):
    # In 64 dimensions with epsilon = 0.3 few samples come near any cone: the samples are listed per
    # basis vector and only those lists are visited.
    acts = randn(200, 64, seed=3)
    calls = []
    original = srm._candidates
    monkeypatch.setattr(srm, "_candidates", lambda *a: calls.append(1) or original(*a))
    _, res = assert_stream_equals_full(acts, torch.eye(64, dtype=F64)[:8], 0.3, 36, "perm", False, chunk_planes=16)
    assert int(res.total.sum()) > 0 and len(calls) == res.n_chunks
    nearly = torch.eye(64, dtype=F64)[:6] + 0.02 * randn(6, 64, seed=13)  # non-orthogonal, |g| small
    _, res2 = assert_stream_equals_full(acts, nearly, 0.3, 36, "perm", True, chunk_planes=16)
    assert res2.mirrored == 0 and len(calls) == res.n_chunks + res2.n_chunks


def test_float32_and_zero_rows():
    acts = torch.tanh(2 * randn(100, 5, seed=4))
    acts[:7] = 0.0
    for eps in (0.4, 0.0):
        assert_stream_equals_full(acts.float(), torch.eye(5), eps, 16, "perm", True, chunk_planes=4)


def test_max_planes_subset_and_keep_planes():
    acts = torch.tanh(2 * randn(300, 6, seed=5))
    full = spotlight_resonance(acts, torch.eye(6), 0.5, 24, max_planes=11, seed=3)
    res = spotlight_resonance_stream(acts, torch.eye(6), 0.5, 24, max_planes=11, seed=3, keep_planes=[4, 1, 4])
    assert torch.equal(res.pairs, full.pairs)
    assert res.kept.tolist() == [1, 4] and torch.equal(res.kept_values, full.values[[1, 4]])
    torch.testing.assert_close(res.mean, full.mean(), rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- summaries and top-k


def test_harmonics_match_srm_harmonic():
    acts = torch.tanh(2 * randn(500, 5, seed=6))
    full, res = assert_stream_equals_full(acts, torch.eye(5), 0.6, 36, "perm", False, order=4)
    for row, h in zip(full.values, res.harmonic.tolist()):
        ref = srm_harmonic(row, full.angles)
        assert (math.isnan(ref) and math.isnan(h)) or abs(ref - h) <= 1e-12
    torch.testing.assert_close(srm_harmonics(full.values), res.harmonic, equal_nan=True)
    torch.testing.assert_close(srm_harmonics(counts_of(full.values, 500)), res.harmonic, equal_nan=True)
    assert math.isnan(float(srm_harmonics(torch.zeros(8))))
    res2 = spotlight_resonance_stream(acts, torch.eye(5), 0.6, 36, order=2)
    assert torch.allclose(res2.harmonic, srm_harmonics(full.values, order=2), equal_nan=True)


def test_summary_properties():
    acts = torch.tanh(2 * randn(300, 4, seed=7))
    full, res = assert_stream_equals_full(acts, torch.eye(4), 0.5, 24, "perm", False)
    assert torch.equal(res.maximum, full.values.amax(1)) and torch.equal(res.minimum, full.values.amin(1))
    assert torch.equal(res.peak_angle, full.angles[full.values.argmax(1)])
    cnt = counts_of(full.values, 300)
    assert torch.equal(res.contrast, cnt.amax(1).to(F64) / cnt.amin(1).to(F64))
    assert "SRMSummary" in repr(res) and res.n_planes == 12


@pytest.mark.parametrize("score", srm.SCORES)
def test_top_k_curves_and_order(score):
    acts = torch.tanh(2 * randn(400, 5, seed=8))
    full, res = assert_stream_equals_full(acts, torch.eye(5), 0.6, 24, "perm", False, top_k=5, score=score)
    cnt = counts_of(full.values, 400)
    mx, mn = cnt.amax(1).to(F64), cnt.amin(1).to(F64)
    h = res.harmonic
    key = {"abs_harmonic": h.abs(), "harmonic": h, "max": mx, "contrast": mx / mn, "range": mx - mn}[score]
    key = torch.where(torch.isnan(key), torch.full_like(key, -math.inf), key)
    by_index = torch.arange(key.shape[0])
    want = by_index[torch.argsort(-key, stable=True)][:5]  # largest first, ties to the lower index
    assert res.top.tolist() == want.tolist()
    assert torch.equal(res.top_values, full.values[want])
    assert torch.equal(res.top_pairs, full.pairs[want])
    # Chunking does not change the ranking.
    again = spotlight_resonance_stream(acts, torch.eye(5), 0.6, 24, top_k=5, score=score, chunk_planes=3)
    assert torch.equal(again.top, res.top)


# --------------------------------------------------------------------------- memory bound


def test_chunk_bound_is_respected():
    acts = torch.tanh(2 * randn(200, 7, seed=9))
    for chunk, mirror in [(1, True), (2, True), (5, True), (5, False), (1000, True)]:
        seen = []
        res = spotlight_resonance_stream(
            acts,
            torch.eye(7),
            0.5,
            24,
            chunk_planes=chunk,
            mirror=mirror,
            progress=lambda done, total: seen.append((done, total)),
        )
        steps = [b[0] - a[0] for a, b in zip([(0, 42)] + seen, seen)]
        assert max(steps) <= chunk and res.largest_chunk == max(steps) and res.chunk_planes == chunk
        assert seen[-1] == (42, 42) and len(seen) == res.n_chunks
        assert res.mirrored == (21 if chunk >= 2 and mirror else 0)
    # max_bytes chooses chunk_planes from the documented per-plane estimate.
    per_plane = srm.stream_plane_bytes(200, 24)
    assert per_plane == 160 * 200 + 64 * 24
    res = spotlight_resonance_stream(acts, torch.eye(7), 0.5, 24, max_bytes=3 * per_plane)
    assert res.chunk_planes == 3 and res.largest_chunk <= 3


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(chunk_planes=0), ValueError, "chunk_planes"),
        (dict(chunk_planes=2.5), TypeError, "chunk_planes"),
        (dict(max_bytes=0), ValueError, "max_bytes"),
        (dict(chunk_planes=4, max_bytes=1000), ValueError, "max_bytes"),
        (dict(top_k=-1), ValueError, "top_k"),
        (dict(score="median"), ValueError, "score"),
        (dict(order=-2), ValueError, "order"),
        (dict(keep_planes=[0, 99]), ValueError, "keep_planes"),
        (dict(keep_planes=torch.tensor([0.5])), TypeError, "keep_planes"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(mirror="yes"), TypeError, "mirror"),
        (dict(epsilon=1.5), ValueError, "epsilon"),
        (dict(n_angles=1), ValueError, "n_angles"),
        (dict(pairs="all"), ValueError, "pairs"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, word):
    args = dict(activations=randn(20, 4), basis=torch.eye(4), epsilon=0.5, n_angles=8)
    args.update(kwargs)
    with pytest.raises(error, match=word):
        spotlight_resonance_stream(**args)


def test_srm_harmonics_bad_input():
    with pytest.raises(ValueError, match="order"):
        srm_harmonics(torch.ones(3, 8), order=-1)
    with pytest.raises(TypeError, match="values"):
        srm_harmonics(torch.ones(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="n_samples"):
        srm.stream_plane_bytes(0, 8)


def test_skipped_pairs_warn():
    basis = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    acts = randn(50, 3, seed=10)
    with pytest.warns(UserWarning, match="skipped 2"):
        res = spotlight_resonance_stream(acts, basis, 0.5, 8)
    assert res.skipped.tolist() == [[0, 1], [1, 0]]


# --------------------------------------------------------------------------- PPPM


@pytest.mark.parametrize("pairs", srm.PAIRS)
def test_pppm_stream_equals_full(pairs):
    for n, basis in ((5, None), (4, randn(5, 4, seed=11))):
        x = 3 * torch.tanh(2 * randn(100, n, seed=n))
        for kw in (
            dict(n_reference=200),
            dict(normalise_volume=False, resolution=32),
            dict(extent=1.5, n_reference=150),
        ):
            full = pppm.pppm_density(x, basis, 0.6, pairs, **kw)
            seen = []
            st = pppm.pppm_density(
                x, basis, 0.6, pairs, stream=True, chunk_planes=3, progress=lambda d, t: seen.append(d), **kw
            )
            assert torch.equal(st.image, full.image) and torch.equal(st.raw, full.raw)
            assert (st.reference is None) == (full.reference is None)
            if full.reference is not None:
                assert torch.equal(st.reference, full.reference) and st.floor == full.floor
            assert st.extent == full.extent and st.normalised == full.normalised
            assert isinstance(st.result, pppm.PPPMTally) and len(st.result) == len(full.result)
            assert st.result.n_planes == full.result.n_planes and st.result.largest_chunk <= 3
            assert st.result.count_ratio == pytest.approx(full.result.count_ratio)
            assert max(b - a for a, b in zip([0] + seen, seen)) <= 3


def test_pppm_stream_float32_and_zero_rows():
    x = randn(150, 5, seed=12).float()
    x[:5] = 0.0
    for eps in (0.7, 0.0):
        full = pppm.pppm_density(x, None, eps, n_reference=200)
        st = pppm.pppm_density(x, None, eps, n_reference=200, max_bytes=64 * 150 * 2, stream=True)
        assert st.result.chunk_planes == 2
        assert torch.equal(st.image, full.image) and len(st.result) == len(full.result)


def test_pppm_stream_bad_arguments():
    x = randn(30, 4)
    for kwargs, error, word in [
        (dict(chunk_planes=0), ValueError, "chunk_planes"),
        (dict(max_bytes=-1), ValueError, "max_bytes"),
        (dict(chunk_planes=2, max_bytes=10), ValueError, "max_bytes"),
        (dict(extent=0.0), ValueError, "extent"),
        (dict(resolution=2), ValueError, "resolution"),
        (dict(progress=3), TypeError, "progress"),
        (dict(pairs="x"), ValueError, "pairs"),
    ]:
        with pytest.raises(error, match=word):
            pppm.pppm_density(x, stream=True, **kwargs)


# --------------------------------------------------------------------------- the benchmark


def test_benchmark_smoke(capsys):
    spec = importlib.util.spec_from_file_location("bench_srm_large", ROOT / "benchmarks" / "bench_srm_large.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--n", "6", "--N", "60", "--angles", "8", "--check-planes", "12", "--threads", "1", "--in-process"])
    out = capsys.readouterr().out
    assert "identical" in out and "DIFFERENT" not in out and "30" in out
