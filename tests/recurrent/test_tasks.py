"""Tests of isodl.recurrent.tasks.train_recall: the recall driver over the core training loop."""

from __future__ import annotations

import pytest
import torch

from isodl.core.train import Divergence
from isodl.recurrent.models import TanhRNN
from isodl.recurrent.tasks import RecallRun, train_recall

SMALL = dict(updates=4, delay=6, hidden_size=5, batch=3, k=2, eval_every=2, test_batch=20)


def test_train_recall_exact_methods_agree_and_truncation_never_moves_symbol_weights():
    net_b, init_b, (steps, acc) = train_recall("bptt", 3, **SMALL)
    net_f, init_f, _ = train_recall("forward", 3, **SMALL)
    net_t, init_t, _ = train_recall("tbptt", 3, **SMALL)
    assert steps == [0, 2, 4] and all(0.0 <= a <= 1.0 for a in acc)
    for name, p in net_b.named_parameters():
        assert torch.equal(init_b[name], init_f[name]) and torch.equal(init_b[name], init_t[name])
        torch.testing.assert_close(p, dict(net_f.named_parameters())[name], rtol=1e-9, atol=1e-12)
    # the symbol is shown at step 0 only and the loss sits at the last step, more than k steps later:
    # truncated BPTT never sees how the symbol inputs (all channels but the cue) affect the loss
    w_t = dict(net_t.named_parameters())["W_xh"]
    assert torch.equal(w_t[:, :-1], init_t["W_xh"][:, :-1])
    assert not torch.equal(dict(net_b.named_parameters())["W_xh"][:, :-1], init_b["W_xh"][:, :-1])


def test_recall_run_record_and_explicit_generator():
    state = torch.random.get_rng_state()
    run = train_recall("bptt", 2, **{**SMALL, "updates": 5})
    assert torch.equal(state, torch.random.get_rng_state()), "the global random state is not used"
    assert isinstance(run, RecallRun) and len(run) == 3 and run.diverged is None
    assert run[0] is run.model and run[1] is run.initial and run[2] == run.curve
    assert run.curve[0] == [0, 2, 4, 5], "every eval_every updates and at the end"
    torch.manual_seed(2)  # the generator draws what manual_seed(seed) used to draw
    reference = TanhRNN(4, 5, 3, dtype=torch.float64)
    for name, p in reference.named_parameters():
        assert torch.equal(run.initial[name], p.detach()), name
    again = train_recall("bptt", 2, **{**SMALL, "updates": 5})
    assert again.curve == run.curve
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), run.model.parameters()))


def test_train_recall_records_divergence_instead_of_raising():
    settings = dict(updates=6, delay=4, hidden_size=4, batch=3, eval_every=2, test_batch=10)
    run = train_recall("bptt", 0, lr=1e30, dtype=torch.float32, **settings)  # Adam steps of 1e30 overflow float32
    assert isinstance(run.diverged, Divergence) and run.diverged.epoch == 1
    updates, accuracies = run.curve
    assert updates[-1] == run.diverged.batch and len(updates) == len(accuracies), "the curve ends where it stopped"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "adam"}, "method"),
        ({"seed": -1}, "seed"),
        ({"k": 0}, "k"),
        ({"lr": 0.0}, "lr"),
        ({"updates": -2}, "updates"),
        ({"eval_every": 0}, "eval_every"),
    ],
)
def test_train_recall_rejects_bad_arguments(kwargs, match):
    args = {"method": "bptt", "seed": 0, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        train_recall(args.pop("method"), args.pop("seed"), **args)


def test_zero_symbol_columns_start_at_zero_and_only_the_exact_gradient_moves_them():
    net_b, init_b, _ = train_recall("bptt", 2, zero_symbol_columns=True, **SMALL)
    net_t, init_t, _ = train_recall("tbptt", 2, zero_symbol_columns=True, **SMALL)
    assert torch.equal(init_b["W_xh"][:, :-1], torch.zeros_like(init_b["W_xh"][:, :-1]))
    assert init_b["W_xh"][:, -1].abs().max() > 0  # the cue column keeps its random draw
    assert torch.equal(dict(net_t.named_parameters())["W_xh"][:, :-1], torch.zeros_like(init_t["W_xh"][:, :-1]))
    assert dict(net_b.named_parameters())["W_xh"][:, :-1].abs().max() > 0
    # without the option the symbol columns start random (the control)
    _, init_r, _ = train_recall("bptt", 2, **SMALL)
    assert init_r["W_xh"][:, :-1].abs().min() > 0


def test_train_recall_rejects_bad_zero_symbol_columns():
    with pytest.raises(TypeError, match="zero_symbol_columns"):
        train_recall("bptt", 0, zero_symbol_columns="yes", **SMALL)


def test_recall_stream_and_online_learning_methods():
    from isodl.recurrent.tasks import recall_stream, train_online

    x, y = recall_stream(3, 4, 2, seed=1, batch=2)
    assert x.shape == (15, 2, 3) and y.shape == (15, 2)
    assert [t for t in range(15) if y[t, 0] >= 0] == [4, 9, 14]  # a cue closes every episode
    small = dict(episodes=4, delay=4, hidden_size=5, batch=3, k=2)
    fwd = train_online("forward", 0, **small)
    bptt = train_online("bptt", 0, **small)
    tb = train_online("tbptt", 0, **small)
    assert fwd.updates_during_stream == 4 == tb.updates_during_stream and bptt.updates_during_stream == 0
    assert len(fwd.accuracies) == len(bptt.accuracies) == len(tb.accuracies) == 4
    # the first cue comes before any update, so all three see the same untrained network there
    assert fwd.accuracies[0] == bptt.accuracies[0] == tb.accuracies[0]
    # truncation (k = 2 < 5 steps per episode) never reaches the symbol weights; forward sensitivity does
    assert torch.equal(tb.model.W_xh[:, :2].detach(), torch.zeros(5, 2, dtype=torch.float64))
    assert fwd.model.W_xh[:, :2].abs().max() > 0
    # a window longer than the dependency (k = 8 >= 5 steps from symbol to cue) does reach them
    long = train_online("tbptt", 0, **{**small, "k": 8})
    assert long.updates_during_stream == 4 and long.model.W_xh[:, :2].abs().max() > 0
    with pytest.raises(ValueError, match="method"):
        train_online("rtrl", 0, **small)
