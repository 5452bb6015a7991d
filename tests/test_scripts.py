"""The reproduction scripts under scripts/ run and report what their docstrings promise."""

import importlib.util
import math

from tools.course import ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quantisation_vs_error_smoke(capsys):
    script = _load("quantisation_vs_error")
    results = script.main(["--epochs", "1", "--seeds", "2"])
    out = capsys.readouterr().out
    assert "Spearman rho" in out
    assert list(results) == ["all runs", "without Thomson tanh K=32", "tanh, leaky ReLU, isotropic tanh"]
    n_all, n_wo, n_three = (results[k][0] for k in results)
    # 6 activations x 2 seeds; runs without PPPM points drop out, never more than the selection holds
    assert 0 < n_three <= 6 and n_three <= n_wo <= 10 and n_wo <= n_all <= 12
    for n, rho, p in results.values():
        assert -1.0 <= rho <= 1.0 and 0.0 < p <= 1.0 and math.isfinite(rho)


def test_quantisation_vs_error_correlation_uses_only_runs_with_an_entropy():
    script = _load("quantisation_vs_error")
    rows = [
        {"activation": "a", "entropy": 0.1, "mse": 3.0},
        {"activation": "a", "entropy": 0.2, "mse": 2.0},
        {"activation": "a", "entropy": 0.25, "mse": 2.5},
        {"activation": "b", "entropy": float("nan"), "mse": 9.0},
        {"activation": "b", "entropy": 0.3, "mse": 1.0},
        {"activation": "b", "entropy": 0.4, "mse": 0.5},
    ]
    n, rho, _ = script.correlation(rows, lambda label: True)
    assert n == 5 and math.isclose(rho, -0.9)  # ranks (1..5) against (5, 3, 4, 2, 1)
    n, rho, _ = script.correlation(rows, lambda label: label == "a")
    assert n == 3 and math.isclose(rho, -0.5)


def test_own_model_srm_smoke(capsys):
    script = _load("own_model_srm")
    results = script.main(["--epochs", "1", "--rotations", "3", "--angles", "24"])
    out = capsys.readouterr().out
    assert "verdict (four-fold SRM harmonic against the rotated null)" in out
    assert 0.0 <= results["test_accuracy"] <= 1.0
    for label in ("trained", "untrained"):
        real, null = results[label]["real"], results[label]["null"]
        assert set(real) == set(null) == set(script.METRICS)
        assert all(len(v) == 3 for v in null.values())
        assert -1.0 <= real["srm_harmonic"] <= 1.0 and real["pppm_ratio"] >= 0.0
        assert results[label]["verdict"] in ("inside the null's range", "OUTSIDE the null's range", "undefined (nan)")
    assert script.verdict(2.0, [0.0, float("nan"), 1.0]) == "OUTSIDE the null's range"
    assert script.verdict(0.5, [0.0, 1.0]) == "inside the null's range"
    assert script.verdict(0.5, [float("nan")]) == "undefined (nan)"


def test_grow_shrink_grid_smoke(tmp_path, capsys):
    script = _load("grow_shrink_grid")
    out = tmp_path / "grid.json"
    results = script.main(["--seeds", "2", "--widths", "3", "5", "--epochs", "1", "2", "1", "--out", str(out)])
    assert out.exists() and "final test accuracy" in capsys.readouterr().out
    assert set(results["adaptive"]) == {"3->3", "3->5", "5->3", "5->5"} and set(results["static"]) == {"3", "5"}
    for group in ("adaptive", "static", "elementwise"):
        for runs in results[group].values():
            assert len(runs) == 2 and all(len(r) == 4 and all(0.0 <= a <= 1.0 for a in r) for r in runs)
    summary = script.summarise(results)
    assert len(summary) == 4 + 2 + 2 and all(0.0 <= m <= 1.0 for m, _ in summary.values())


def test_quantisation_nulls_smoke(tmp_path, capsys):
    script = _load("quantisation_nulls")
    out = tmp_path / "q.json"
    result = script.main(
        ["--epochs", "1", "--seeds", "1", "--gains", "6", "--families", "tanh", "isotropic tanh", "--out", str(out)]
    )
    text = capsys.readouterr().out
    assert "wrote 2 runs" in text and out.is_file()
    from isodl.symmetry import autoencoder

    loaded = autoencoder.load_quantisation_results(out)
    assert loaded["settings"]["gains"] == [6.0] and [r["family"] for r in loaded["rows"]] == ["tanh", "isotropic tanh"]
    for row in loaded["rows"]:
        assert 0 <= row["n_stuck"] <= 8 and len(row["unit_mean"]) == 8 and row["mse"] > 0
        assert len(row["all"]["gauss_entropy"]) == 5 and len(row["all"]["rot_c4"]) == 20
        assert "epoch0" in row and 0 <= row["epoch0"]["n_stuck"] <= 8
    assert result["rows"][0]["family"] == "tanh"
    # the notebook's clustering test: a Gaussian null's own entropy never counts as clustered
    block = {"entropy": 0.5, "gauss_entropy": [0.5, 0.51]}
    assert not script.clustered(block) and script.clustered({"entropy": 0.4, "gauss_entropy": [0.5, 0.51]})


def test_quantisation_kmeans_smoke(tmp_path, capsys):
    script = _load("quantisation_kmeans")
    out = tmp_path / "k.json"
    result = script.main(
        ["--epochs", "1", "--seeds", "1", "--gains", "6", "--families", "tanh", "Thomson tanh K=9", "--out", str(out)]
    )
    text = capsys.readouterr().out
    assert "wrote 2 runs" in text and out.is_file()
    from isodl.symmetry import autoencoder

    loaded = autoencoder.load_quantisation_results(out)
    assert loaded["settings"]["k"] == 10 and [r["family"] for r in loaded["rows"]] == ["tanh", "Thomson tanh K=9"]
    for row in loaded["rows"]:
        assert row["n_units"] == (8 if row["family"] == "tanh" else 9) and 0 <= row["n_stuck"] <= row["n_units"]
        assert len(row["kmeans_all"]["gauss_inertia"]) == 5 and row["kmeans_all"]["ratio"] > 0
        if "kmeans_live" in row:  # the graded control, built from the run's own live latent
            cal = row["calibration"]
            assert [c["noise"] for c in cal] == list(script.NOISE_LEVELS)
            assert cal[0]["kmeans"]["ratio"] < cal[-1]["kmeans"]["ratio"]  # blurring the clusters raises the ratio
    assert result["rows"][0]["family"] == "tanh"
    # the k-means flag: a ratio inside the Gaussian draws' spread is not clustered, one far below is
    assert not script.kmeans_flag({"ratio": 0.99, "null_ratio": [0.99, 1.01]})
    assert script.kmeans_flag({"ratio": 0.5, "null_ratio": [0.99, 1.01]})
    assert (
        script.detection_limit([{"noise": 0.1, "f": True}, {"noise": 0.2, "f": False}, {"noise": 0.4, "f": True}], "f")
        == 0.1
    )


def test_normalisation_experiments_smoke(tmp_path, capsys):
    script = _load("normalisation_experiments")
    out = tmp_path / "n.json"
    result = script.main(["--scale", "smoke", "--out", str(out)])
    text = capsys.readouterr().out
    assert "affine-like minus BatchNorm" in text and "slope" in text and out.is_file()
    from isodl.normalisation import experiments as nc

    loaded = nc.load_paper_results(out)
    table = {r["method"]: r for r in loaded["comparison"]["table"]}
    assert set(table) == {"none", "batchnorm", "affine_like"}
    for r in table.values():
        assert r["n"] == 2 and r["test"]["lo"] <= r["test"]["mean"] <= r["test"]["hi"] and r["lr"] in r["grid"]
    block = loaded["batch_size"]["protocols"]["sqrt"]
    # the fixed sample budget: every run saw the same number of samples (up to one batch)
    budget = result["batch_size"]["samples"]
    assert {r["steps"] * r["batch_size"] for r in block["rows"]} <= set(range(budget - 32, budget + 1))
    assert set(block["minus_none"]) == {"batchnorm", "affine_like"}
    assert block["minus_none"]["affine_like"]["seeds"] == [0, 1]
    # part 3 on its own: merged into the file, the rest of the file left as it was
    before = dict(loaded)
    before.pop("batch_tuned")
    again = script.main(["--scale", "smoke", "--part", "batch_tuned", "--out", str(out)])
    assert "rate tuned per (method, B)" in capsys.readouterr().out
    merged = nc.load_paper_results(out)
    assert {k: v for k, v in merged.items() if k != "batch_tuned"} == before
    tuned = merged["batch_tuned"]
    assert len(tuned["rows"]) == len(again["batch_tuned"]["rows"]) == 3 * 2 * 2
    assert {(r["method"], r["batch_size"]) for r in tuned["table"]} == {
        (m, b) for m in ("none", "batchnorm", "affine_like") for b in (8, 32)
    }
    for t in tuned["tuning"]:
        assert t["chosen"] in t["grid"] and len(t["grid"]) >= 3
        assert t["at_edge"] == (t["chosen"] in (t["grid"][0], t["grid"][-1]))
    # evaluation seeds kept apart from the tuning seeds, every run at its (method, B)'s chosen rate and the budget
    assert {r["seed"] for r in tuned["rows"]} == {0, 1} and {r["seed"] for r in tuned["tuning_rows"]} == {100, 101}
    rate = {(t["method"], t["batch_size"]): t["chosen"] for t in tuned["tuning"]}
    assert all(r["lr"] == rate[(r["method"], r["batch_size"])] for r in tuned["rows"])
    assert {r["steps"] * r["batch_size"] for r in tuned["rows"]} <= set(range(budget - 32, budget + 1))
    assert set(tuned["all_runs"]["minus_none"]) == {"batchnorm", "affine_like"}
    assert set(tuned["trained_only"]["minus_batchnorm"]) <= {"none", "affine_like"}


def test_superposition_hidden_basis_smoke(tmp_path, capsys):
    script = _load("superposition_hidden_basis")
    out = tmp_path / "hb.json"
    record = script.main(["--seeds", "2", "--steps", "20", "--initialisations", "2", "--out", str(out)])
    assert out.exists() and "rotated null" in capsys.readouterr().out
    assert record["seeds"] == [100, 101] and len(record["results"]) == 2
    arm = record["results"][0]["relu,sgd"]
    assert set(arm) >= {"alignment", "alignment_null", "pppm", "pppm_null", "loss"}
    assert all(len(v) == 3 * 2 for v in arm.values())  # 3 sparsities x 2 initialisations


def test_superposition_dims_sweep_smoke(tmp_path, capsys):
    script = _load("superposition_dims_sweep")
    out = tmp_path / "dims.json"
    record = script.main(["--points", "3", "--steps", "20", "--initialisations", "2", "--out", str(out)])
    assert out.exists() and "m/||W||_F^2" in capsys.readouterr().out
    assert len(record["sparsities"]) == 3 and len(record["dims_per_feature"]) == 3 * 2
    assert all(0.0 < d for d in record["dims_per_feature"])
