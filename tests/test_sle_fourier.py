"""The SLE built with the structure (issue 12): W₁ band-limited in angular Fourier, exactly rotation-invariant
at B = 0 (W₁ under the channels' rotation permutations, and the encoder's map of an image turned by 90°),
its parameter count, its registration, and a short training run through the trainer on the synthetic set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.nets import FourierSLE, ScatteringSLE, build_model, registry
from explorer.nets.sle_fourier import first_layer_parameters
from explorer.runs import RunStore, describe_model
from explorer.scattering import Path, rotation_permutation, split_orders
from explorer.training import make_config, train

TINY = dict(J=2, L=4, widths=(6,))


def _model(band: int, L: int = 4, seed: int = 0) -> FourierSLE:
    """A model whose input statistics are not the identity: gathered in training mode on random
    features whose scale depends on the channel (not along the orbits)."""
    torch.manual_seed(seed)
    model = FourierSLE(**{**TINY, "L": L}, band=band)
    channels = model.input_norm.num_features
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, channels, 8, 8) * torch.linspace(0.5, 3, channels)[:, None, None] + 0.2)
    return model.eval()


def windowed_image(seed: int = 0, size: int = 32) -> np.ndarray:
    """(3, size, size) noise plus oblique gratings, vanishing outside the central size/2 × size/2 pixels
    (a Hann window centred on the image, mapped onto itself by np.rot90): the padding plays no part
    (as tests/test_channels.py's windowed_noise)."""
    rng = np.random.default_rng(seed)
    u = np.arange(size)
    window = np.zeros(size)
    window[size // 4:size - size // 4] = np.hanning(size // 2)
    images = []
    for colour in range(3):
        x = rng.random((size, size)) + np.sin(2 * np.pi * (u[:, None] + (2 + colour) * u[None, :]) / 7)
        images.append(x * (window[:, None] * window[None, :]))
    return np.stack(images)


def _turn_error(model: ScatteringSLE, encode) -> float:
    """Relative difference between the encoder's map of the image turned by 90° (counter-clockwise, as
    np.rot90) and that of the image, turned. The turned image is shifted by one pixel so that its samples
    fall back on the 2^J grid; the first row then has no counterpart (as in test_channels)."""
    x = windowed_image()
    turned = np.rot90(x, 1, axes=(-2, -1))
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()[None]
    with torch.no_grad():
        target = encode(as_tensor(np.roll(turned, 1, axis=-2)))[..., 1:, :]
        predicted = torch.roll(torch.rot90(encode(as_tensor(x)), 1, dims=(-2, -1)), 1, dims=-2)[..., 1:, :]
    return float((predicted - target).norm() / target.norm())


def test_w1_is_invariant_under_every_rotation_of_the_channels_at_band_0():
    for L in (4, 8):
        model = _model(0, L)
        w1 = model.first_layer_weight.detach()
        for steps in range(1, L):
            permutation = rotation_permutation(model.input_channels, L, steps)
            assert torch.equal(w1[:, permutation], w1), (L, steps)
        # The input normalisation is shared along orbits, so W₁·diag(1/σ) is invariant too.
        for stat in (model.input_norm.running_mean, model.input_norm.running_var):
            assert torch.equal(stat[rotation_permutation(model.input_channels, L, 1)], stat)
            assert stat.std() > 0.01  # not trivially constant
    # At band 1 it is not.
    w1 = _model(1).first_layer_weight.detach()
    assert not torch.allclose(w1[:, rotation_permutation(_model(1).input_channels, 4, 1)], w1)


def test_the_encoder_of_an_image_turned_by_90_degrees_is_the_turned_encoder_at_band_0():
    """Exact up to float32 rounding at B = 0 (the local encoder is invariant at each position); at B = 1 and
    for the free SLE with per-channel statistics, far from it. The logits are not invariant in any of them:
    the classifier reads the flattened map position by position."""
    invariant = _model(0)
    assert _turn_error(invariant, invariant.encode_images) < 1e-5  # 1.2e-7 measured
    # The same W₁ with per-channel statistics (as the free SLE's input norm): 1e-2, so tying them matters.
    untied = _model(0)
    with torch.no_grad():
        untied.input_norm.running_var.uniform_(0.5, 2)
    assert _turn_error(untied, untied.encode_images) > 1e-3
    banded = _model(1)
    assert _turn_error(banded, banded.encode_images) > 1e-2
    # The free SLE's encoder with the same construction (per-channel statistics, free W₁) is not invariant.
    free = ScatteringSLE(**TINY).eval()
    with torch.no_grad():
        free.input_norm.running_var.uniform_(0.5, 2)
    encode = lambda images: free.encoder(free.input_norm(free.features(images).flatten(1, 2)))
    assert _turn_error(free, encode) > 1e-2
    # The band-0 model's logits go through the same encoder: images in, logits out.
    with torch.no_grad():
        images = torch.from_numpy(windowed_image(1)).float()[None]
        logits = invariant.forward_images(images)
        assert torch.equal(logits, invariant.head(invariant.encode_images(images).flatten(1)))
        assert torch.equal(logits, invariant(invariant.features(images)))


@pytest.mark.parametrize("L", [4, 8])
def test_band_1_keeps_no_angular_frequency_above_1(L):
    model = _model(1, L)
    _, s1, s2 = split_orders(model.first_layer_weight.detach().double(), model.input_channels, axis=-1)
    omega = np.abs(np.fft.fftfreq(L, 1 / L))  # |ω| of each DFT index
    spectrum1 = torch.fft.fft(s1, dim=-1, norm="ortho").abs().square()
    assert spectrum1[..., omega <= 1].sum() > 0
    assert spectrum1[..., omega > 1].sum() < 1e-12 * spectrum1.sum()
    # Parseval: the orthonormal basis keeps the energy.
    assert spectrum1.sum() == pytest.approx(float(s1.square().sum()), rel=1e-9)
    # Order 2 re-indexed by (θ1, δ = θ2 − θ1): |ω_θ1| ≤ 1, δ free.
    theta = torch.arange(L)
    reindexed = s2[..., theta[:, None], (theta[:, None] + theta[None, :]) % L]  # [θ1, δ] = s2[θ1, θ1 + δ]
    spectrum2 = torch.fft.fft(reindexed, dim=-2, norm="ortho").abs().square()
    assert spectrum2[..., omega > 1, :].sum() < 1e-12 * spectrum2.sum()
    assert spectrum2[..., omega > 0, :].sum() > 1e-3 * spectrum2.sum()  # ω_θ1 = ±1 is used
    # On the raw (θ1, θ2) axes: within |ω_θ1 + ω_θ2| ≤ 1 (mod L), the band around the anti-diagonal.
    raw = torch.fft.fft2(s2, norm="ortho").abs().square()
    line = torch.from_numpy(np.abs(np.fft.fftfreq(L, 1 / L)[(np.arange(L)[:, None] + np.arange(L)[None, :]) % L]))
    assert raw[..., line > 1].sum() < 1e-12 * raw.sum()
    # At band 0 along θ1 only ω = 0.
    s1_0 = split_orders(_model(0, L).first_layer_weight.detach(), model.input_channels, axis=-1)[1]
    assert torch.allclose(s1_0, s1_0[..., :1].expand_as(s1_0))


def test_parameter_counts():
    for L in (4, 8):
        for band in range(L // 2 + 1):
            model = FourierSLE(J=2, L=L, widths=(6,), band=band)
            n = min(2 * band + 1, L)
            assert model.first_layer_parameter_count() == 6 * 3 * (1 + 2 * n + n * L)
            assert model.first_layer_parameter_count() == first_layer_parameters(2, L, 6, band)
    # J = 2, L = 8, widths (512, 512): the figures of the module docstring.
    assert first_layer_parameters(2, 8, 512, 0) == 16_896
    assert first_layer_parameters(2, 8, 512, 1) == 47_616
    assert first_layer_parameters(2, 8, 512) == 124_416 == ScatteringSLE().encoder[0].weight.numel()
    # The full band has as many numbers as the free W₁.
    assert FourierSLE(J=2, L=4, widths=(6,), band=2).first_layer_parameter_count() == \
        ScatteringSLE(**TINY).encoder[0].weight.numel()


def test_w1_accessors_and_replacement():
    model = _model(0)
    images = torch.from_numpy(windowed_image()).float()[None]
    columns = model.weights_by_path()
    assert list(columns) == [(c.colour, c.path) for c in model.input_channels]
    assert torch.equal(columns[("green", Path(1, 0, 2))], model.first_layer_weight[:, 25 + 1 + 2])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model.forward_images(images)
        w1 = model.first_layer_weight.clone()
        zeroed = w1 * torch.tensor([c.order != 2 for c in model.input_channels])
        with model.replaced_first_layer(zeroed) as replaced:
            assert replaced is model and torch.equal(model.first_layer_weight, zeroed)
            during = model.forward_images(images)
        assert not torch.equal(during, before)
        with model.replaced_first_layer({key: torch.zeros(6) for key, c in zip(columns, model.input_channels)
                                         if c.order == 2}):
            assert torch.allclose(model.forward_images(images), during, atol=1e-6)
        with pytest.raises(RuntimeError, match="analysis failed"), \
                model.replaced_first_layer(torch.zeros_like(w1)):
            raise RuntimeError("analysis failed")
        assert torch.equal(model.forward_images(images), before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="W₁ must have shape"), model.replaced_first_layer(torch.zeros(2, 2)):
        pass
    with pytest.raises(KeyError, match="not input channels"), \
            model.replaced_first_layer({("red", Path(2, 1, 0, 0, 0)): torch.zeros(6)}):
        pass
    # W₁ carries the coefficients' gradients (what training follows).
    model.first_layer_weight.sum().backward()
    assert model.encoder[0].order2.grad is not None


def test_registered_with_the_sle_pieces_and_band_checked():
    spec, sle = registry.get("sle_fourier"), registry.get("sle")
    assert spec.constructor is FourierSLE and spec.trains_on == sle.trains_on == "features"
    assert spec.augmenter is sle.augmenter and spec.default_augment == sle.default_augment
    assert spec.default_schedule == sle.default_schedule
    config = make_config("sle_fourier", band=0, widths=[8], L=4, dataset="synthetic")
    assert config["model_config"]["band"] == 0 and config["augment"]["crop_padding"] == 0
    assert spec.feature_params(config["model_config"]) == {"J": 2, "L": 4}
    assert spec.describe(make_config("sle_fourier")["model_config"]) == "sle_fourier B=0 J=2 L=8 widths=[512, 512]"
    assert "band" in {field.name for field in spec.form_fields}
    assert spec.cli_arguments(config["model_config"])[-2:] == ["--band", "0"]
    assert isinstance(build_model("sle_fourier", **config["model_config"]), FourierSLE)
    for band, L in [(3, 4), (-1, 8), (5, 8)]:
        with pytest.raises(ValueError, match=rf"band B must be between 0 and L/2 = {L // 2}"):
            make_config("sle_fourier", band=band, L=L)
    with pytest.raises(ValueError, match="band B must be between 0 and L/2 = 4"):
        FourierSLE(band=5)


def test_trains_on_the_synthetic_features_and_is_listed(tmp_path):
    store = RunStore(tmp_path, shipped=False)
    config = make_config("sle_fourier", band=0, widths=[8], L=4, dataset="synthetic", epochs=1,
                         limit_train=64, limit_test=64, batch_size=16)
    run = train(config, store=store, progress=False)
    assert run.status == "complete" and 0 <= run.metrics[-1]["test_acc"] <= 1
    (info,) = store.list()
    assert info.id == run.id and run.id.startswith("sle_fourier-")
    assert describe_model(run.config) == "sle_fourier B=0 J=2 L=4 widths=[8]"
    model = store.load(run.id).build_model()
    w1 = model.first_layer_weight.detach()
    assert torch.equal(w1[:, rotation_permutation(model.input_channels, 4, 1)], w1)  # still invariant


def test_the_runs_page_form_offers_the_band():
    import panel as pn

    from explorer import jobs
    from explorer.app import build_app
    from explorer.train_cli import config_from_args

    page = build_app("runs").page
    model_select = next(w for w in page.controls.select(pn.widgets.Select) if w.name == "Model")
    assert "sle_fourier" in list(model_select.options)
    page.param.update(model="sle_fourier", band=1, widths="16 8", dataset="synthetic", epochs=1)
    shown = {w.name for w in page.fields.values() if w.visible}
    assert shown == {"Encoder widths (sle)", "Angular band B (sle_fourier)"}
    argv = page.train_arguments()
    assert argv[0] == "sle_fourier" and argv[argv.index("--band") + 1] == "1"
    config = config_from_args(jobs._parse_train_args(argv))
    assert config["model_config"]["band"] == 1 and config["model_config"]["widths"] == [16, 8]


def test_orbit_batch_norm_is_batch_norm_with_statistics_pooled_over_each_orbit():
    from explorer.nets.sle_fourier import OrbitBatchNorm

    torch.manual_seed(0)
    single, reference = OrbitBatchNorm(torch.arange(5)), torch.nn.BatchNorm2d(5, affine=False)
    for _ in range(3):
        x = torch.randn(7, 5, 3, 3) * 3 + 1
        torch.testing.assert_close(single(x), reference(x))
    torch.testing.assert_close(single.running_var, reference.running_var)
    single.eval(), reference.eval()
    torch.testing.assert_close(single(x), reference(x))
    tied, x = OrbitBatchNorm(torch.tensor([0, 1, 0])), torch.randn(4, 3, 3, 3)
    pooled = torch.cat([x[:, 0], x[:, 2]])[:, None]  # channels 0 and 2 as more samples of one channel
    expected = torch.nn.functional.batch_norm(pooled, None, None, training=True)
    torch.testing.assert_close(tied(x)[:, [0, 2]], torch.stack([expected[:4, 0], expected[4:, 0]], dim=1))
