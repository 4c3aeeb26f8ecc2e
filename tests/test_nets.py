"""The networks of science.md §3–4: sizes, non-linearities, inner maps."""
from __future__ import annotations

import pytest
import torch

from explorer.nets import CNN13, ReLUk, SignSqrt, build_model


@pytest.mark.parametrize("width,reported", [(16, 28_000), (32, 112_000), (64, 445_000)])
def test_cnn13_parameter_counts_match_the_paper(width, reported):
    count = sum(p.numel() for p in CNN13(width).parameters())
    assert abs(count - reported) / reported < 0.01


def test_cnn13_inner_maps_follow_the_strides():
    model = CNN13(8)
    maps = model.inner_maps(torch.rand(2, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [32] * 4 + [16] * 4 + [8] * 4
    assert all(m.shape[:2] == (2, 8) for m in maps)
    assert model.training  # inner_maps leaves the mode alone (explorer.nets.extract sets inference)


def test_relu_k_rectifies_only_the_first_k_channels():
    x = -torch.ones(1, 10, 2, 2)
    y = ReLUk(10, 0.3)(x)  # k = ⌊0.3·10⌋ = 3, despite 0.3·10 = 2.9999… in floating point
    assert (y[:, :3] == 0).all() and (y[:, 3:] == -1).all()
    assert torch.equal(ReLUk(10, 0.0)(x), x) and (ReLUk(10, 1.0)(x) == 0).all()
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\]"):
        ReLUk(10, 1.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_sign_sqrt_values_and_finite_gradients(dtype):
    x = torch.tensor([-4.0, -0.25, 0.0, 0.25, 4.0], dtype=dtype, requires_grad=True)
    y = SignSqrt()(x)
    expected = torch.tensor([-2.1, -0.6, 0.0, 0.6, 2.1])
    torch.testing.assert_close(y.float(), expected, rtol=1e-2, atol=1e-2)
    y.sum().backward()
    assert torch.isfinite(x.grad.float()).all()


@pytest.mark.parametrize("config,message", [
    ({"width": 0}, "width K must be an integer"),
    ({"rho": "tanh"}, "unknown non-linearity"),
    ({"rho": "relu_k"}, "needs alpha"),
])
def test_bad_cnn13_configurations_are_named(config, message):
    with pytest.raises(ValueError, match=message):
        build_model("cnn13", **config)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")
