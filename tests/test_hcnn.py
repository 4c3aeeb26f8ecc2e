"""The multiscale hierarchical CNN (explorer.nets.hcnn): its n-d convolution against direct loops, its
shapes and size, the covariance along attributes it is built for, its configuration and schedules."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from explorer.nets import build_model
from explorer.nets.hcnn import HierarchicalCNN, HierarchicalLayer, VolumeLayer, hierarchical_conv
from explorer.training.schedules import check_schedule, get_schedule, lr_at


@pytest.fixture(autouse=True)
def _no_gradients():
    with torch.no_grad():
        yield


def padded(array: np.ndarray, widths) -> np.ndarray:
    return np.pad(array, widths)


def loop_spatial(x: np.ndarray, weight: np.ndarray, stride: int) -> np.ndarray:
    """x (V1, V2, H, W), weight (C, 1, k, k) → (V1, V2, C, H', W') by direct sums, zero padding k // 2."""
    v1, v2, height, width = x.shape
    channels, _, k, _ = weight.shape
    p = k // 2
    xp = padded(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out_h, out_w = (height + 2 * p - k) // stride + 1, (width + 2 * p - k) // stride + 1
    out = np.zeros((v1, v2, channels, out_h, out_w))
    for a, b, c, i, j in itertools.product(range(v1), range(v2), range(channels), range(out_h), range(out_w)):
        out[a, b, c, i, j] = sum(xp[a, b, i * stride + du, j * stride + dv] * weight[c, 0, du, dv]
                                 for du in range(k) for dv in range(k))
    return out


def loop_attribute(h: np.ndarray, weight: np.ndarray, stride: int) -> np.ndarray:
    """h (V1, V2, C, H, W), weight (F, C, k1, k2) → (F, V1', V2', H, W) by direct sums along (V1, V2)."""
    v1, v2, channels, height, width = h.shape
    filters, _, k1, k2 = weight.shape
    p1, p2 = k1 // 2, k2 // 2
    hp = padded(h, ((p1, p1), (p2, p2), (0, 0), (0, 0), (0, 0)))
    o1, o2 = (v1 + 2 * p1 - k1) // stride + 1, (v2 + 2 * p2 - k2) // stride + 1
    out = np.zeros((filters, o1, o2, height, width))
    for f, a, b in itertools.product(range(filters), range(o1), range(o2)):
        for c, d1, d2 in itertools.product(range(channels), range(k1), range(k2)):
            out[f, a, b] += weight[f, c, d1, d2] * hp[a * stride + d1, b * stride + d2, c]
    return out


def loop_4d(x: np.ndarray, spatial: np.ndarray, attribute: np.ndarray, stride: int) -> np.ndarray:
    """The unfactored 4-D convolution Σ x(a − v_a, u − v_u) K_f(v_a, v_u), K_f = Σ_c attribute[f, c] ⊗ spatial[c]."""
    v1, v2, height, width = x.shape
    filters, _, k1, k2 = attribute.shape
    k = spatial.shape[-1]
    kernel = np.einsum("fcab,cuv->fabuv", attribute, spatial[:, 0])  # (F, k1, k2, k, k)
    p1, p2, p = k1 // 2, k2 // 2, k // 2
    xp = padded(x, ((p1, p1), (p2, p2), (p, p), (p, p)))
    o1, o2 = (v1 + 2 * p1 - k1) // 2 + 1, (v2 + 2 * p2 - k2) // 2 + 1
    oh, ow = (height + 2 * p - k) // stride + 1, (width + 2 * p - k) // stride + 1
    out = np.zeros((filters, o1, o2, oh, ow))
    for f, a, b, i, j in itertools.product(range(filters), range(o1), range(o2), range(oh), range(ow)):
        patch = xp[2 * a:2 * a + k1, 2 * b:2 * b + k2, i * stride:i * stride + k, j * stride:j * stride + k]
        out[f, a, b, i, j] = (patch * kernel[f]).sum()
    return out


@pytest.mark.parametrize("spatial_stride", [1, 2])
def test_the_factored_convolution_is_the_4d_convolution_of_a_direct_loop(spatial_stride):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 5, 5, 4, generator=generator, dtype=torch.float64)
    spatial = torch.randn(3, 1, 3, 3, generator=generator, dtype=torch.float64)
    attribute = torch.randn(2, 3, 3, 5, generator=generator, dtype=torch.float64)
    got = hierarchical_conv(x, spatial, attribute, spatial_stride, 2)[0].numpy()
    expected = loop_4d(x[0].numpy(), spatial.numpy(), attribute.numpy(), spatial_stride)
    assert got.shape == expected.shape == (2, 2, 3, *((5, 4) if spatial_stride == 1 else (3, 2)))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_a_pointwise_map_between_the_two_convolutions_acts_on_each_spatial_response():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 6, 4, 4, generator=generator, dtype=torch.float64)
    spatial = torch.randn(2, 1, 3, 3, generator=generator, dtype=torch.float64)
    attribute = torch.randn(3, 2, 3, 5, generator=generator, dtype=torch.float64)
    got = hierarchical_conv(x, spatial, attribute, 2, 2, between=torch.tanh).numpy()
    for image in range(2):
        middle = np.tanh(loop_spatial(x[image].numpy(), spatial.numpy(), 2))
        np.testing.assert_allclose(got[image], loop_attribute(middle, attribute.numpy(), 2), rtol=1e-10, atol=1e-10)


def test_the_volume_layer_slides_its_filters_along_the_first_attribute_with_stride_2():
    torch.manual_seed(2)
    layer = VolumeLayer(filters=3, kernel_new=5).double().eval()  # BN at its initial statistics: x / √(1 + ε)
    x = torch.randn(1, 6, 4, 4, dtype=torch.float64)
    got = layer(x)[0].numpy()  # (V1', F, H, W)
    weight = layer.conv.weight.numpy()[:, 0]  # (F, k, 3, 3)
    xp = np.pad(x[0].numpy(), ((2, 2), (1, 1), (1, 1)))
    expected = np.zeros((3, 3, 4, 4))  # (V1', F, H, W)
    for a, f, i, j in itertools.product(range(3), range(3), range(4), range(4)):
        expected[a, f, i, j] = (xp[2 * a:2 * a + 5, i:i + 3, j:j + 3] * weight[f]).sum()
    expected = expected / np.sqrt(1 + layer.norm.eps)
    expected = np.where(expected > 0, expected, np.expm1(expected))  # ELU
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_the_released_network_has_its_shapes_and_0_36_million_parameters():
    model = HierarchicalCNN().eval()
    maps = model.inner_maps(torch.rand(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == (
        [(2, 16, 32, 32)] + [(2, 8, 16, 32, 32)] * 2 + [(2, 8, 16, 16, 16)] * 4 + [(2, 8, 16, 8, 8)] * 4)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    # by hand: layer 1, layer 2, nine 4-D layers (3×3 conv 1 → 32, 7×11 conv 32 → 16), BN affine pairs, dense
    by_hand = (3 * 16 * 9 + 16 * 11 * 9 + 9 * (32 * 9 + 16 * 32 * 7 * 11)
               + 2 * (16 + 16 + 9 * (32 + 16)) + 16 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == by_hand == 360_522


def test_a_smaller_network_keeps_its_bounded_shape():
    model = build_model("hcnn", filters=6, kernel_old=3, kernel_new=5).eval()
    maps = model.inner_maps(torch.rand(1, 3, 32, 32))
    assert maps[0].shape == (1, 6, 32, 32) and maps[-1].shape == (1, 3, 6, 8, 8)


def shifted(x: torch.Tensor, axis: int, shift: int) -> torch.Tensor:
    """x translated by ``shift`` positions along ``axis``, zeros entering."""
    out = torch.zeros_like(x)
    source = [slice(None)] * x.ndim
    target = [slice(None)] * x.ndim
    source[axis], target[axis] = slice(0, x.shape[axis] - shift), slice(shift, None)
    out[tuple(target)] = x[tuple(source)]
    return out


def randomised_statistics(layer: torch.nn.Module) -> torch.nn.Module:
    """BN with non-trivial running statistics and affine parameters, in eval mode: pointwise per channel."""
    generator = torch.Generator().manual_seed(3)
    for module in layer.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator))
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.copy_(torch.randn(size, generator=generator))
            module.bias.copy_(torch.randn(size, generator=generator))
    return layer.eval()


@pytest.mark.parametrize("spatial_stride", [1, 2])
def test_translating_the_newest_attribute_by_2_translates_the_output_older_attribute_by_1(spatial_stride):
    torch.manual_seed(4)
    layer = randomised_statistics(HierarchicalLayer(filters=4, kernel_old=7, kernel_new=11,
                                                    spatial_stride=spatial_stride)).double()
    x = torch.randn(2, 8, 16, 8, 8, dtype=torch.float64)  # (B, V1, V2, H, W)
    out, moved = layer(x), layer(shifted(x, 2, 2))  # (B, 8, F, H', W')
    # output position a reads inputs 2a − 5 … 2a + 5: away from the borders, a = 4, 5
    torch.testing.assert_close(moved[:, 4:6], out[:, 3:5], rtol=1e-10, atol=1e-10)
    assert (moved[:, 1:3] - out[:, 0:2]).abs().max() > 1e-3  # at the border it is not a translation


def test_the_volume_layer_is_covariant_along_its_attribute():
    torch.manual_seed(5)
    layer = randomised_statistics(VolumeLayer(filters=4, kernel_new=11)).double()
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    out, moved = layer(x), layer(shifted(x, 1, 2))
    torch.testing.assert_close(moved[:, 4:6], out[:, 3:5], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("options", "message"), [
    ({"filters": 0}, "filters must be an integer ≥ 1"),
    ({"kernel_old": 4}, "kernel_old must be odd"),
    ({"kernel_new": 2.5}, "kernel_new must be an integer"),
])
def test_bad_configurations_name_the_parameter(options, message):
    from explorer.training import make_config

    with pytest.raises(ValueError, match=message):
        make_config("hcnn", **options)


def test_the_cli_names_a_bad_kernel(capsys):
    from explorer.cli import main

    assert main(["train", "hcnn", "--kernel-old", "4", "--dataset", "synthetic"]) != 0
    assert "kernel_old must be odd" in capsys.readouterr().err


def test_the_paper_schedule_steps_down_at_its_epochs():
    schedule = get_schedule("hcnn-paper")
    per_epoch = 1000
    lrs = [lr_at(schedule, epoch * per_epoch, 320 * per_epoch, per_epoch) for epoch in (0, 39, 40, 79, 80, 279, 280, 300)]
    # the released Keras callback: lr[i] while epoch < steps[i]
    assert lrs == pytest.approx([0.35, 0.35, 0.175, 0.175, 0.0875, 0.35 * 0.007, 0.35 * 0.00035, 0.35 * 0.00017])
    with pytest.raises(ValueError, match="one factor more than milestones"):
        check_schedule({**schedule, "decay": {"kind": "piecewise", "milestones": [1, 2], "factors": [1.0, 0.5]}})


@pytest.mark.slow
def test_it_learns_the_synthetic_stripes_and_its_command_rebuilds_the_run(tmp_path):
    from explorer.jobs import _parse_train_args, train_arguments
    from explorer.runs import RunStore, run_id
    from explorer.train_cli import config_from_args
    from explorer.training import make_config, train

    with torch.enable_grad():
        config = make_config("hcnn", filters=5, kernel_old=3, kernel_new=5, dataset="synthetic", epochs=3,
                             limit_train=256, limit_test=128, batch_size=32, lr=0.05)
        run = train(config, store=RunStore(tmp_path), progress=False, device="cpu")
    assert run.metrics[-1]["test_acc"] >= 0.85
    argv = train_arguments(config)
    assert argv[:1] == ["hcnn"] and "--kernel-old" in argv
    assert run_id(config_from_args(_parse_train_args(argv))) == run.id


def test_the_volume_layers_gradient_is_float64s():
    """torch 2.13's float32 conv3d gave this layer's weight a wrong gradient on the CPU: the layer avoids it."""
    torch.manual_seed(6)
    layer = VolumeLayer(filters=8, kernel_new=11)
    x, upstream = torch.randn(64, 8, 32, 32), torch.randn(64, 4, 8, 32, 32)  # F = 8, batch 64: conv3d's failing case
    gradients = []
    for dtype in (torch.float32, torch.float64):
        copy = VolumeLayer(filters=8, kernel_new=11).to(dtype)
        copy.load_state_dict(layer.state_dict())
        with torch.enable_grad():
            (copy(x.to(dtype)) * upstream.to(dtype)).sum().backward()
        gradients.append(copy.conv.weight.grad.double())
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-4, atol=1e-3 * gradients[1].abs().max().item())


@pytest.mark.parametrize("spatial_stride", [1, 2])
def test_the_hierarchical_layers_gradients_are_float64s(spatial_stride):
    """Its two steps are conv3d's (kernels flat along the other step's axes): unlike the volume layer's shape,
    these give float64's gradients in float32, for both weights and the input."""
    torch.manual_seed(7)
    layer = HierarchicalLayer(filters=8, kernel_old=7, kernel_new=11, spatial_stride=spatial_stride)
    x = torch.randn(16, 4, 8, 16, 16)
    size = 16 // spatial_stride
    upstream = torch.randn(16, 4, 8, size, size)
    gradients = []
    for dtype in (torch.float32, torch.float64):
        copy = HierarchicalLayer(filters=8, kernel_old=7, kernel_new=11, spatial_stride=spatial_stride).to(dtype)
        copy.load_state_dict(layer.state_dict())
        inputs = x.to(dtype).requires_grad_()
        with torch.enable_grad():
            (copy(inputs) * upstream.to(dtype)).sum().backward()
        gradients.append([g.double() for g in (copy.spatial.weight.grad, copy.attribute.weight.grad, inputs.grad)])
    for low, high in zip(*gradients):
        torch.testing.assert_close(low, high, rtol=1e-4, atol=1e-4 * high.abs().max().item())
