"""isodl.core.capture: a layer's activations from any model, by forward hook."""

import pytest
import torch
from torch import nn

from isodl.core.capture import WHEN, capture_activations, find_layer


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU())
        self.head = nn.Linear(6 * 4 * 4, 2)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.head(self.dropout(self.features(x).flatten(1)))


def conv() -> ConvNet:
    torch.manual_seed(1)
    return ConvNet()


def batches(x: torch.Tensor, size: int, labels: bool = True):
    return [
        (x[i : i + size], torch.zeros(len(x[i : i + size]))) if labels else x[i : i + size]
        for i in range(0, len(x), size)
    ]


X = torch.randn(23, 5, generator=torch.Generator().manual_seed(2))
IMAGES = torch.randn(9, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def test_when_choices():
    assert WHEN == ("post", "pre")


@pytest.mark.parametrize("by_name", [True, False])
def test_mlp_post_and_pre_equal_the_direct_computation(by_name):
    model = mlp()
    with torch.no_grad():
        hidden = model[0](X)
        relu = torch.relu(hidden)
    layer = "1" if by_name else model[1]
    post = capture_activations(model, layer, batches(X, 4))
    pre = capture_activations(model, layer, batches(X, 4, labels=False), when="pre")
    assert post.shape == (23, 7) and post.dtype == torch.float32
    torch.testing.assert_close(post, relu)
    torch.testing.assert_close(pre, hidden)
    first = capture_activations(model, "0" if by_name else model[0], X, when="pre", batch_size=5)
    torch.testing.assert_close(first, X)  # a single tensor is split into batches


def test_conv_post_flat_and_channels_and_unflattened():
    model = conv()
    with torch.no_grad():
        fmap = model.features(IMAGES)  # [9, 6, 4, 4]
    flat = capture_activations(model, "features.3", batches(IMAGES, 4))
    torch.testing.assert_close(flat, fmap.flatten(1))
    per_position = capture_activations(model, model.features[3], batches(IMAGES, 4), channels=True)
    assert per_position.shape == (9 * 16, 6)
    torch.testing.assert_close(per_position, fmap.permute(0, 2, 3, 1).reshape(-1, 6))
    torch.testing.assert_close(per_position[:16], fmap[0].reshape(6, 16).T)  # image 0's positions come first
    kept = capture_activations(model, "features", IMAGES, flatten=False, dtype=torch.float64)
    assert kept.dtype == torch.float64
    torch.testing.assert_close(kept, fmap.double())
    head_in = capture_activations(model, "head", IMAGES, when="pre")
    torch.testing.assert_close(head_in, fmap.flatten(1))  # dropout is off in eval mode
    whole = capture_activations(model, "", IMAGES)
    assert whole.shape == (9, 2)


def test_max_samples_cuts_exactly_and_stops_reading():
    model = mlp()
    seen = []

    def loader():
        for b in batches(X, 4):
            seen.append(len(b[0]))
            yield b

    out = capture_activations(model, "1", loader(), max_samples=10)
    assert out.shape == (10, 7)
    torch.testing.assert_close(out, capture_activations(model, "1", X)[:10])
    assert seen == [4, 4, 4]  # the fourth batch is never read
    rows = capture_activations(conv(), "features.1", IMAGES, channels=True, max_samples=100)
    assert rows.shape == (100, 4)  # positions of 36 each: 2 images and a part of the third
    assert capture_activations(model, "1", X, max_samples=1000).shape == (23, 7)


def test_the_rest_of_the_forward_pass_is_skipped():
    model = mlp()
    calls = []
    model[2].register_forward_hook(lambda *a: calls.append(1))
    capture_activations(model, "1", X)
    assert not calls and len(model[2]._forward_hooks) == 1  # the user's own hook stays


def test_hooks_removed_and_training_modes_restored():
    model = conv()
    model.train()
    model.features[0].eval()  # a mixed state is restored module by module
    capture_activations(model, "features.3", IMAGES)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert model.training and model.dropout.training and not model.features[0].training
    capture_activations(model, "head", IMAGES, when="pre")
    assert all(not m._forward_pre_hooks for m in model.modules())
    model.eval()
    capture_activations(model, "head", IMAGES)
    assert not model.training


def test_hooks_removed_after_an_error():
    model = conv()
    model.train()
    bad = [IMAGES[:2], torch.randn(2, 3, 8, 8)]  # the second batch has the wrong channel count
    with pytest.raises(RuntimeError):
        capture_activations(model, "features.3", bad)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert model.training and model.dropout.training
    with pytest.raises(TypeError, match="index"):
        capture_activations(nn.LSTM(3, 4, batch_first=True), "", torch.randn(2, 5, 3))


def test_no_grad_and_a_copy_on_the_cpu():
    model = mlp()
    x = X.clone()
    out = capture_activations(model, "0", x, when="pre")
    assert not out.requires_grad
    out += 1
    torch.testing.assert_close(x, X)  # a copy, not a view of the inputs
    inplace = nn.Sequential(nn.Linear(5, 7), nn.ReLU(inplace=True))
    got = capture_activations(inplace, "0", X)
    assert (got < 0).any()  # the in-place ReLU did not change the captured pre-activations
    assert capture_activations(model, "1", X, to=None).device.type == "cpu"


def test_tuple_and_dict_outputs_take_an_index():
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected, _ = lstm(x)
    torch.testing.assert_close(capture_activations(lstm, "", x, index=0, flatten=False), expected)

    class Dict(nn.Module):
        def forward(self, x):
            return {"a": x * 2, "b": "text"}

    torch.testing.assert_close(capture_activations(Dict(), "", X, index="a"), 2 * X)
    with pytest.raises(TypeError, match="pass index="):
        capture_activations(Dict(), "", X)
    with pytest.raises(TypeError, match="item 'b'.*str, not a tensor"):
        capture_activations(Dict(), "", X, index="b")
    with pytest.raises(ValueError, match="index=5 does not select"):
        capture_activations(lstm, "", x, index=5)
    with pytest.raises(ValueError, match="single tensor"):
        capture_activations(mlp(), "1", X, index=0)


def test_errors_name_the_problem():
    model = mlp()
    with pytest.raises(ValueError, match=r"'fc1' is not a module of Sequential.*'0', '1', '2'"):
        capture_activations(model, "fc1", X)
    with pytest.raises(ValueError, match=r"did you mean \['features.3'"):
        find_layer(conv(), "feature.3")
    with pytest.raises(ValueError, match="not part of the model"):
        capture_activations(model, nn.ReLU(), X)
    with pytest.raises(TypeError, match="layer must be"):
        capture_activations(model, 1, X)
    with pytest.raises(TypeError, match="model must be"):
        capture_activations("model", "1", X)
    unused = conv()
    unused.spare = nn.ReLU()  # registered, never called in forward()
    with pytest.raises(RuntimeError, match="'spare' .*did not run"):
        capture_activations(unused, "spare", IMAGES)
    for kwargs, match in [
        ({"when": "after"}, "when"),
        ({"max_samples": 0}, "max_samples"),
        ({"max_samples": 2.5}, "max_samples"),
        ({"flatten": 1}, "flatten"),
        ({"channels": True, "flatten": False}, "channels"),
        ({"dtype": torch.int64}, "dtype"),
        ({"batch_size": 0}, "batch_size"),
        ({"index": 1.0}, "index"),
        ({"device": "nowhere"}, "device"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            capture_activations(model, "1", X, **kwargs)
    with pytest.raises(ValueError, match="no batches"):
        capture_activations(model, "1", [])
    with pytest.raises(TypeError, match="data must be"):
        capture_activations(model, "1", 3)
    with pytest.raises(ValueError, match="empty batch"):
        capture_activations(model, "1", [()])
    with pytest.raises(ValueError, match="scalar"):
        capture_activations(nn.Identity(), "", [torch.tensor(1.0)])
