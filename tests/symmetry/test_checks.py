"""The notebook-03 exercise check: ``checks.check_top_k_purity`` (grandmother directions).

It must pass the reference and correct learner versions (torch and NumPy), and
fail, with the matching hint, on the stub and on the usual mistakes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isodl import exercises
from isodl.symmetry import checks
from isodl.symmetry.representations import class_purity, direction_purity, top_along


def reference(scores, labels, k):
    top = torch.argsort(scores, descending=True)[:k]
    counts = torch.bincount(labels[top])
    cls = int(torch.argmax(counts))
    return float(counts[cls]) / k, cls


def with_topk(scores, labels, k):
    top = torch.topk(scores, k).indices
    values, counts = torch.unique(labels[top], return_counts=True)
    best = int(torch.argmax(counts))
    return counts[best] / k, values[best]  # tensors: numbers of one element are fine


def with_numpy(scores, labels, k):
    s, y = scores.numpy(), labels.numpy()
    top = np.argsort(-s)[:k]
    counts = np.bincount(y[top])
    return counts.max() / k, int(counts.argmax())


def stub(scores, labels, k):
    raise NotImplementedError(exercises.STUB_MESSAGE)


def k_smallest(scores, labels, k):
    top = torch.argsort(scores)[:k]
    return class_purity(labels[top])


def count_not_share(scores, labels, k):
    share, cls = reference(scores, labels, k)
    return round(share * k), cls


def k_plus_one(scores, labels, k):
    top = torch.argsort(scores, descending=True)[: k + 1]
    return class_purity(labels[top])


def all_samples(scores, labels, k):
    return class_purity(labels)


def divided_by_n(scores, labels, k):
    share, cls = reference(scores, labels, k)
    return share * k / labels.numel(), cls


def class_of_top_sample(scores, labels, k):
    share, _ = reference(scores, labels, k)
    return share, int(labels[torch.argmax(scores)])


def share_only(scores, labels, k):
    return reference(scores, labels, k)[0]


def crashes(scores, labels, k):
    return labels[scores.argsort()[-k:]].mode().nope


def test_registered():
    assert exercises.CHECKS["top_k_purity"] is checks.check_top_k_purity


@pytest.mark.parametrize("fn", [reference, with_topk, with_numpy, checks._top_k_purity_reference])
def test_passes_correct_versions(fn, capsys):
    result = checks.check_top_k_purity(fn)
    assert result.passed, result.message
    assert result.trials == 8
    assert capsys.readouterr().out.startswith("PASS: top_k_purity matched the reference on 8 random inputs")


def test_reference_matches_the_library_pipeline():
    # The exercise is one direction of representations.direction_purity.
    gen = torch.Generator().manual_seed(3)
    acts = torch.randn(200, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (200,), generator=gen)
    direction = torch.randn(5, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm()
    share, cls = reference(acts @ direction, labels, 30)
    assert share == float(direction_purity(acts, labels, direction[None], k=30)[0])
    assert cls == class_purity(labels[top_along(acts, direction, 30)])[1]


def test_inputs_are_tie_free_and_make_the_mistakes_visible():
    gen = torch.Generator().manual_seed(0)
    differs = {name: 0 for name in ("smallest", "k+1", "all", "top sample")}
    for _ in range(8):
        scores, labels, k = checks._top_k_purity_inputs(gen)
        assert scores.dtype == torch.float64 and labels.dtype == torch.int64
        assert torch.unique(scores).numel() == scores.numel()
        assert 5 <= k <= 15 < scores.numel()
        counts = torch.bincount(labels[torch.argsort(scores, descending=True)[:k]])
        assert int((counts == counts.max()).sum()) == 1
        expected = reference(scores, labels, k)
        for name, fn in (
            ("smallest", k_smallest),
            ("k+1", k_plus_one),
            ("all", all_samples),
            ("top sample", class_of_top_sample),
        ):
            got = fn(scores, labels, k)
            differs[name] += not (abs(float(got[0]) - expected[0]) < 1e-12 and int(got[1]) == expected[1])
    assert all(v >= 1 for v in differs.values()), differs


def test_fails_on_the_stub():
    result = checks.check_top_k_purity(stub, verbose=False)
    assert not result.passed
    assert "NotImplementedError" in result.message and exercises.NOT_DONE_HINT in result.message


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (k_smallest, "LARGEST scores"),
        (count_not_share, "not the count"),
        (k_plus_one, "exactly k samples"),
        (all_samples, "among the top k samples only"),
        (divided_by_n, "divide the count by k"),
        (class_of_top_sample, "not the class of the single highest-scoring sample"),
        (share_only, "return two values"),
    ],
)
def test_fails_on_typical_mistakes_with_a_hint(fn, hint, capsys):
    result = checks.check_top_k_purity(fn)  # must not raise
    assert not result.passed
    out = capsys.readouterr().out
    assert out.startswith("FAIL: top_k_purity: ")
    assert hint in result.message, result.message
    assert "Input that failed" in result.message and "scores = tensor of shape" in result.message


def test_a_crash_is_reported_not_raised():
    result = checks.check_top_k_purity(crashes, verbose=False)
    assert not result.passed and "AttributeError" in result.message


def test_inputs_are_not_shared_between_learner_and_reference():
    def edits_inputs(scores, labels, k):
        out = reference(scores, labels, k)
        scores.neg_()
        labels.zero_()
        return out

    assert checks.check_top_k_purity(edits_inputs, verbose=False).passed
