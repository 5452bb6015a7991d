import math

import pytest
import torch
from torch import nn

import isodl
from isodl.core.train import (
    MLP,
    Divergence,
    History,
    StepRecord,
    accuracy,
    correct,
    evaluate,
    fit,
    make_optimizer,
    optimise,
    predict,
    train_epoch,
    train_steps,
)


def blobs(n=240, d=4, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(k, d, generator=g)
    y = torch.arange(n) % k
    x = centres[y] + torch.randn(n, d, generator=g)
    return x[: n * 3 // 4], y[: n * 3 // 4], x[n * 3 // 4 :], y[n * 3 // 4 :]


def train_once(seed, **kw):
    isodl.set_seed(seed)
    model = MLP([4, 16, 3])
    return model, fit(model, blobs(), epochs=8, lr=1e-2, seed=seed, progress=False, **kw)


def test_classifier_learns_and_history_is_plain_data():
    _, h = train_once(0)
    d = h.to_dict()
    assert d["epoch"] == list(range(9))
    assert all(isinstance(v, float) for v in d["train_loss"])
    assert d["train_loss"][-1] < 0.5 * d["train_loss"][0]
    assert d["test_accuracy"][-1] > 0.9
    assert h.final()["epoch"] == 8 and "History(" in repr(h)


def test_same_seed_same_history_and_weights():
    m1, h1 = train_once(5)
    m2, h2 = train_once(5)
    assert h1.to_dict() == h2.to_dict()
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    _, h3 = train_once(6)
    assert h3.to_dict() != h1.to_dict()


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw"])
def test_optimizers(opt):
    isodl.set_seed(0)
    model = MLP([4, 16, 3])
    h = fit(
        model,
        blobs(),
        epochs=5,
        optimizer=opt,
        lr=0.05 if opt == "sgd" else 1e-2,
        momentum=0.9 if opt == "sgd" else 0.0,
        progress=False,
    )
    assert h.train_loss[-1] < h.train_loss[0]


def test_autoencoder_reduces_reconstruction_error():
    isodl.set_seed(0)
    x_tr, _, x_te, _ = blobs(d=6)
    model = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Tanh(), torch.nn.Linear(3, 6))
    h = fit(model, (x_tr, None, x_te, None), task="autoencode", epochs=15, lr=1e-2, progress=False)
    assert h.test_loss[-1] < 0.7 * h.test_loss[0]
    assert "test_accuracy" not in h.to_dict()


def test_accepts_a_dataset_object_and_a_ready_optimizer():
    class DS:
        x_train, y_train, x_test, y_test = blobs()

    isodl.set_seed(0)
    model = MLP([4, 8, 3])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = fit(model, DS(), optimizer=opt, epochs=3, progress=False)
    assert len(h.epoch) == 4


def test_on_epoch_callback_sees_every_epoch():
    seen = []
    isodl.set_seed(0)
    fit(MLP([4, 8, 3]), blobs(), epochs=3, progress=False, on_epoch=lambda e, m, h: seen.append((e, len(h.epoch))))
    assert seen == [(1, 2), (2, 3), (3, 4)]


def test_divergence_is_recorded_not_raised_and_the_model_stays_finite():
    isodl.set_seed(0)
    x_tr, y_tr, x_te, y_te = blobs()
    model = MLP([4, 8, 3], activation="identity")
    h = fit(model, (x_tr * 1e6, y_tr, x_te, y_te), epochs=3, optimizer="sgd", lr=1e6, progress=False)
    assert isinstance(h.diverged, Divergence)
    assert h.diverged.epoch >= 1 and h.diverged.batch >= 0 and not math.isfinite(h.diverged.loss)
    assert h.epoch == list(range(h.diverged.epoch)), "the epoch it stopped in is not evaluated"
    assert all(math.isfinite(v) for v in h.step_loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    text = f"{h.diverged} {h.diverged!r} {h!r}"
    for word in ("epoch", "batch", "loss"):
        assert word in str(h.diverged) and word in repr(h.diverged), word
    assert "diverged" in text
    _, fine = train_once(0)
    assert fine.diverged is None and len(fine.step_loss) == 8 * math.ceil(180 / 64)


def test_evaluate():
    x_tr, y_tr, _, _ = blobs()
    isodl.set_seed(0)
    r = evaluate(MLP([4, 8, 3]), x_tr, y_tr)
    assert set(r) == {"loss", "accuracy"} and 0 <= r["accuracy"] <= 1


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"epochs": -1}, ValueError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"task": "regress"}, ValueError, "task"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"seed": -3}, ValueError, "seed"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        fit(MLP([4, 8, 3]), blobs(), progress=False, **kwargs)


def test_fit_rejects_bad_data():
    x_tr, y_tr, x_te, y_te = blobs()
    with pytest.raises(TypeError, match="data"):
        fit(MLP([4, 8, 3]), [x_tr, y_tr], progress=False)
    with pytest.raises(ValueError, match="same length"):
        fit(MLP([4, 8, 3]), (x_tr, y_tr[:-1], x_te, y_te), progress=False)
    with pytest.raises(ValueError, match="differ in shape"):
        fit(MLP([4, 8, 3]), (x_tr, y_tr, x_te[:, :3], y_te), progress=False)
    with pytest.raises(TypeError, match="model"):
        fit("not a model", blobs(), progress=False)
    with pytest.raises(ValueError, match="y"):
        evaluate(MLP([4, 8, 3]), x_tr, None)


def test_mlp_and_optimizer_validation():
    with pytest.raises(ValueError, match="widths"):
        MLP([4])
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        MLP([4, -2, 3])
    with pytest.raises(ValueError, match="activation"):
        MLP([4, 3], activation="swish")
    with pytest.raises(TypeError, match="widths"):
        MLP("64,10")
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer("adamw", MLP([2, 2]).parameters(), weight_decay=-1)
    with pytest.raises(ValueError, match="empty"):
        History(task="classify").final()


# --------------------------------------------------------------------------- the loop itself


def digits_like(n=100, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def fresh(seed=0, widths=(5, 7, 3), batchnorm=False):
    torch.manual_seed(seed)
    if batchnorm:
        return nn.Sequential(
            nn.Linear(widths[0], widths[1]), nn.BatchNorm1d(widths[1]), nn.ReLU(), nn.Linear(*widths[1:])
        )
    return MLP(list(widths))


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_train_epoch_same_generator_seed_same_record_and_weights():
    x, y = digits_like()
    runs = []
    for _ in range(2):
        model = fresh(1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(3)
        records = [train_epoch(model, opt, x, y, batch_size=16, generator=gen, epoch=e) for e in (1, 2)]
        runs.append((records, params(model)))
    (r1, p1), (r2, p2) = runs
    assert [r.losses for r in r1] == [r.losses for r in r2]
    assert r1[0].batch_sizes == [16] * 6 + [4] and r1[0].steps == 7 and r1[0].diverged is None
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    weighted = sum(v * b for v, b in zip(r1[0].losses, r1[0].batch_sizes)) / 100
    assert r1[0].mean_loss == pytest.approx(weighted, rel=1e-12)
    assert r1[1].mean_loss < r1[0].mean_loss
    assert math.isnan(StepRecord().mean_loss) and "StepRecord(steps=7" in repr(r1[0])


def test_divergence_stops_before_the_step_with_epoch_batch_and_loss():
    x, y = digits_like(n=40)
    bad = x.clone()
    bad[25] = float("inf")  # in the third batch of 10, in order
    batches = [(bad[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)]
    model, reference = fresh(2), fresh(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    record = optimise(model, opt, batches, loss_fn=nn.functional.cross_entropy, epoch=4, first_batch=0)
    optimise(reference, ref_opt, batches[:2], loss_fn=nn.functional.cross_entropy)
    assert record.diverged == Divergence(epoch=4, batch=2, loss=record.diverged.loss)
    assert not math.isfinite(record.diverged.loss) and record.steps == 2
    assert all(torch.equal(a, b) for a, b in zip(params(model), params(reference))), "the bad step was not taken"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert str(record.diverged).startswith("training diverged at epoch 4, batch 2: the loss became")
    assert "Divergence(epoch=4, batch=2, loss=" in repr(record.diverged)
    with pytest.raises(AttributeError):
        record.diverged.epoch = 1  # frozen: a record, not a state


def test_train_steps_is_the_old_step_budget_protocol():
    """The fixed-step protocol of notebook 11 as it was written before the loop was shared, step for step."""

    def old_protocol(model, x, y, lr, batch_size, steps, seed):
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        n = x.shape[0]
        order, pos, losses = torch.randperm(n, generator=gen), 0, []
        model.train()
        while len(losses) < steps:
            if pos >= n:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos : pos + batch_size]
            pos += batch_size
            if idx.numel() == 1 and has_bn:
                continue
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses

    x, y = digits_like(n=41)  # 41 = 4 * 10 + 1: a leftover batch of one sample
    for batchnorm in (False, True):
        for batch_size, steps in ((10, 23), (7, 6), (41, 3)):
            old, new = fresh(5, batchnorm=batchnorm), fresh(5, batchnorm=batchnorm)
            losses = old_protocol(old, x, y, 0.05, batch_size, steps, seed=9)
            opt = torch.optim.SGD(new.parameters(), lr=0.05)
            record = train_steps(
                new, opt, x, y, steps=steps, batch_size=batch_size, generator=torch.Generator().manual_seed(9)
            )
            assert record.losses == losses and record.steps == steps, (batchnorm, batch_size)
            assert all(torch.equal(a, b) for a, b in zip(params(old), params(new)))
            if batchnorm and batch_size == 10:
                assert 1 not in record.batch_sizes, "BatchNorm: the single leftover sample is left out"
    empty = train_steps(fresh(), torch.optim.SGD(fresh().parameters(), lr=0.1), x, y, steps=0)
    assert empty.steps == 0 and empty.diverged is None


def test_train_steps_records_the_epoch_of_a_divergence():
    x, y = digits_like(n=30)  # batches of 8: 4 per epoch
    calls = []

    def loss_fn(logits, targets):  # the 11th loss is not finite: epoch 3, batch 2
        calls.append(1)
        loss = nn.functional.cross_entropy(logits, targets)
        return loss * float("nan") if len(calls) == 11 else loss

    model = fresh(0)
    record = train_steps(
        model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, steps=50, batch_size=8, loss_fn=loss_fn
    )
    assert record.steps == 10 and record.diverged.epoch == 3 and record.diverged.batch == 2
    assert math.isnan(record.diverged.loss) and len(calls) == 11


def test_accuracy_counts_non_finite_rows_as_wrong():
    class Fixed(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.logits[x[:, 0].long()]

    logits = torch.tensor([[2.0, 0.0], [float("nan"), 0.0], [float("inf"), 0.0], [0.0, 1.0], [5.0, -float("inf")]])
    labels = torch.tensor([0, 0, 0, 1, 0])
    x = torch.arange(5.0)[:, None]
    model = Fixed(logits)
    assert correct(logits, labels).tolist() == [True, False, False, True, False]
    assert accuracy(model, x, labels) == pytest.approx(2 / 5)
    assert accuracy(model, x, labels, batch_size=2) == pytest.approx(2 / 5)
    assert evaluate(model, x, labels, loss_fn=lambda out, t: out.new_zeros(()))["accuracy"] == pytest.approx(2 / 5)


def test_predict_batches_in_eval_mode_and_restores_the_mode():
    x, _ = digits_like(n=50)
    model = fresh(3, batchnorm=True)
    train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), x, digits_like(n=50)[1], batch_size=10)
    model.train()
    out = predict(model, x, batch_size=7)
    assert model.training and out.shape == (50, 3) and not out.requires_grad
    model.eval()
    torch.testing.assert_close(out, model(x))


def test_penalty_hook_is_added_to_the_loss_and_its_gradient():
    x, y = digits_like(n=20)
    model, manual = fresh(4), fresh(4)
    weight = model.net[0].weight

    def penalty():
        return 0.3 * (weight**2).sum()

    record = train_epoch(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        x,
        y,
        batch_size=20,
        penalty=penalty,
        generator=torch.Generator().manual_seed(0),
    )
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    loss = nn.functional.cross_entropy(manual(x[order]), y[order]) + 0.3 * (manual.net[0].weight ** 2).sum()
    loss.backward()
    with torch.no_grad():
        for p in manual.parameters():
            p -= 0.1 * p.grad
    assert record.losses[0] == pytest.approx(float(loss.detach()), rel=1e-6)
    for a, b in zip(model.parameters(), manual.parameters()):
        torch.testing.assert_close(a, b)


def test_gradient_hook_replaces_backpropagation():
    x, y = digits_like(n=12)
    model = fresh(6)
    before = params(model)
    seen = []

    def unit_gradient(m, inputs, targets):
        seen.append(inputs.shape[0])
        for p in m.parameters():
            p.grad = torch.ones_like(p)
        return torch.tensor(1.5)

    record = train_epoch(
        model, torch.optim.SGD(model.parameters(), lr=0.25), x, y, batch_size=5, gradient=unit_gradient
    )
    assert seen == [5, 5, 2] and record.losses == [1.5, 1.5, 1.5]
    for a, b in zip(model.parameters(), before):
        torch.testing.assert_close(a, b - 0.75 * torch.ones_like(b))
    stopped = train_epoch(
        model, torch.optim.SGD(model.parameters(), lr=0.25), x, y, batch_size=5, gradient=lambda m, i, t: float("nan")
    )
    assert stopped.steps == 0 and stopped.diverged == Divergence(1, 0, stopped.diverged.loss)
    with pytest.raises(ValueError, match="penalty or gradient"):
        train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, gradient=unit_gradient, penalty=lambda: 0)


def test_max_steps_and_autoencoder_targets():
    x, _ = digits_like(n=30)
    model = nn.Sequential(nn.Linear(5, 2), nn.Linear(2, 5))
    record = train_epoch(
        model, torch.optim.SGD(model.parameters(), lr=0.01), x, task="autoencode", batch_size=4, max_steps=3
    )
    assert record.steps == 3 and record.batch_sizes == [4, 4, 4]


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda m, o, x, y: train_epoch(m, "adam", x, y), TypeError, "optimizer"),
        (lambda m, o, x, y: train_epoch("model", o, x, y), TypeError, "model"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, batch_size=0), ValueError, "batch_size"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, generator=0), TypeError, "generator"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, max_steps=-1), ValueError, "max_steps"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, epoch=0), ValueError, "epoch"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, penalty=3), TypeError, "penalty"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, gradient="bptt"), TypeError, "gradient"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, loss_fn=1), TypeError, "loss_fn"),
        (lambda m, o, x, y: train_epoch(m, o, x, y, task="regress"), ValueError, "task"),
        (lambda m, o, x, y: train_epoch(m, o, x), ValueError, "y"),
        (lambda m, o, x, y: train_epoch(m, o, x, y[:5]), ValueError, "same number of samples"),
        (lambda m, o, x, y: train_epoch(m, o, x[:0], y[:0]), ValueError, "non-empty"),
        (lambda m, o, x, y: train_epoch(m, o, x.long(), y), TypeError, "x must be a floating"),
        (lambda m, o, x, y: train_steps(m, o, x, y, steps=-1), ValueError, "steps"),
        (lambda m, o, x, y: optimise(m, o, 3, loss_fn=nn.functional.cross_entropy), TypeError, "batches"),
        (lambda m, o, x, y: optimise(m, o, [(x, y)]), ValueError, "loss_fn"),
        (lambda m, o, x, y: optimise(m, o, [], loss_fn=len, first_batch=-1), ValueError, "first_batch"),
        (lambda m, o, x, y: predict(m, x[0]), ValueError, "non-empty batch"),
        (lambda m, o, x, y: accuracy(m, x, y[:3]), ValueError, "same number of samples"),
        (lambda m, o, x, y: correct(x, y[:3]), ValueError, "same number of samples"),
        (lambda m, o, x, y: fit(m, (x, y, x, y), on_epoch=5, progress=False), TypeError, "on_epoch"),
    ],
)
def test_loop_rejects_bad_arguments_naming_them(call, err, match):
    x, y = digits_like(n=10)
    model = fresh()
    with pytest.raises(err, match=match):
        call(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y)


def test_batchnorm_needs_two_samples():
    x, y = digits_like(n=1)
    model = fresh(batchnorm=True)
    with pytest.raises(ValueError, match="BatchNorm"):
        train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y)
