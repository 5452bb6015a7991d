import pytest
import torch

import isodl
from isodl.core.train import MLP, History, evaluate, fit, make_optimizer


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


def test_divergence_is_reported_not_hidden():
    isodl.set_seed(0)
    x_tr, y_tr, x_te, y_te = blobs()
    with pytest.raises(FloatingPointError, match="lower lr"):
        fit(
            MLP([4, 8, 3], activation="identity"),
            (x_tr * 1e6, y_tr, x_te, y_te),
            epochs=3,
            optimizer="sgd",
            lr=1e6,
            progress=False,
        )


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
