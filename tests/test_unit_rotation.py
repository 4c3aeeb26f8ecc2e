"""Units' responses to rotated test images (explorer.analysis.unit_rotation): the structured SLE at band 0 and
a W₁ constant along θ answer the same at 90° and 180°, a free SLE does not, m = 0 changes nothing, the
measured change agrees in rank with the spectral invariance score of the shipped run, and bad input is
refused with a clear message."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from explorer.analysis import spectra
from explorer.analysis import unit_rotation as ur
from explorer.analysis.invariance import rotate
from explorer.data.samples import shipped_test_images
from explorer.nets import FourierSLE, ScatteringSLE
from explorer.nets.sle_fourier import rotation_orbits

SHIPPED_SLE = "sle-695ad4593697"
TINY = dict(J=2, L=8, widths=(6,))


def images(n: int = 12) -> np.ndarray:
    return np.ascontiguousarray(shipped_test_images().images[:n])


def with_statistics(model):
    """The model with input statistics gathered in training mode on random features whose scale depends on
    the channel (so the input norm is not the identity), then in eval mode."""
    channels = model.input_norm.num_features
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, channels, 8, 8) * torch.linspace(0.5, 3, channels)[:, None, None] + 0.2)
    return model.eval()


def fourier_model(band: int, seed: int = 0) -> FourierSLE:
    torch.manual_seed(seed)
    return with_statistics(FourierSLE(**TINY, band=band))


def free_model(seed: int = 0) -> ScatteringSLE:
    torch.manual_seed(seed)
    return with_statistics(ScatteringSLE(**TINY))


def spread(values: np.ndarray) -> float:
    return float(np.linalg.norm(values - values.mean(axis=0)))


# -- what a response is ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [free_model, lambda: fourier_model(1)])
def test_responses_are_the_encoders_own_maps_averaged(make):
    """The ReLU responses are the spatial means of the model's own encoder (one layer here), and the
    pre-activations are linear in W₁: doubling W₁ doubles them."""
    model = make()
    x = images(6)
    framed, _ = ur.rotate_images(x, 0, model.L)
    pre, relu = ur.unit_maps(model, framed)
    with torch.no_grad():
        features = model.features(torch.from_numpy(framed)).flatten(1, 2)
        reference = model.encoder(model.input_norm(features)).mean(dim=(-2, -1)).double().numpy()
        with model.replaced_first_layer(2 * model.first_layer_weight.detach()):
            doubled, _ = ur.unit_maps(model, framed)
    np.testing.assert_allclose(relu, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(doubled, 2 * pre, rtol=1e-5, atol=1e-6)
    assert pre.shape == relu.shape == (6, 6)


def test_rotations_are_rot90_at_multiples_of_90_and_interpolated_otherwise():
    x = images(3)
    L = 8
    frame = ur.frame("disk", (32, 32), 2)
    assert frame.centre == (14.0, 14.0) and frame.side == 29 and frame.radius == 9.5
    assert frame.window[frame.window > 0].size > 0 and frame.window[:5].max() == 0  # clear of the padded rows
    framed, rotated = ur.rotate_images(x, 2 * L + 4, L)  # 90° (m taken mod 2L)
    np.testing.assert_array_equal(rotated[..., :29, :29], np.rot90(framed[..., :29, :29], 1, axes=(-2, -1)))
    _, full = ur.rotate_images(x, L, L, "full")  # 180° about the image centre
    np.testing.assert_allclose(full, np.rot90(x / 255.0, 2, axes=(-2, -1)), atol=1e-6)
    _, turned = ur.rotate_images(x, 1, L, "full")
    np.testing.assert_allclose(turned[1, 2], rotate(x[1, 2] / 255.0, 22.5), atol=1e-6)
    assert [ur.is_exact(m, L) for m in range(2 * L)] == [m % 4 == 0 for m in range(2 * L)]
    assert ur.degrees(-1, L) == 337.5 and ur.degrees(np.int64(3), L) == 67.5


# -- invariance ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_structured_sle_at_band_0_answers_the_same_at_multiples_of_90_degrees(quarter_turns):
    model = fourier_model(0)
    result = ur.unit_responses(model, images(), quarter_turns * model.L // 2)
    assert result.exact and result.degrees == 90 * quarter_turns
    assert spread(result.before) > 0.01  # the units do respond, differently to different images
    np.testing.assert_allclose(result.after, result.before, atol=1e-4 * spread(result.before))
    np.testing.assert_allclose(result.after_relu, result.before_relu, atol=1e-4 * spread(result.before_relu))
    assert result.change.max() < 1e-4
    # Every unit's change is rounding: no ranking of units by it.
    assert np.isnan(ur.rank_correlation(np.arange(6.0), result.change))
    # The same model at band 1 is not invariant at 90° (at 180° every unit is: θ and θ + π are one orientation).
    assert ur.unit_responses(fourier_model(1), images(), model.L // 2).change.min() > 1e-2


def test_free_sle_changes_at_90_degrees_and_not_at_180():
    model = free_model()
    at_90 = ur.unit_responses(model, images(), model.L // 2)
    assert np.median(at_90.change) > 0.05 and at_90.change.min() > 1e-3
    # 180°: θ ↦ θ + π is the same orientation (|x ⋆ ψ_θ+π| = |x ⋆ ψ_θ| for real images): only the map turns.
    at_180 = ur.unit_responses(model, images(), model.L)
    assert at_180.change.max() < 1e-4


def test_no_rotation_changes_nothing():
    model = free_model()
    for m in (0, 2 * model.L, -2 * model.L):
        result = ur.unit_responses(model, images(), m)
        assert result.m == 0 and result.degrees == 0 and result.exact
        np.testing.assert_array_equal(result.after, result.before)
        np.testing.assert_array_equal(result.change, np.zeros(model.widths[0]))


def test_a_hand_made_w1_constant_along_theta_is_invariant_at_90_degrees():
    """A free SLE whose W₁ takes one value per rotation orbit of input channels (order 1: along θ1; order 2:
    along θ1 at fixed θ2 − θ1) and input statistics of the identity: invariant at 90°; one weight changed,
    not any more."""
    model = ScatteringSLE(**TINY).eval()
    orbit = rotation_orbits(model.input_channels, model.L)
    values = torch.randn(model.widths[0], int(orbit.max()) + 1, generator=torch.Generator().manual_seed(1))
    constant = values[:, orbit]
    assert not torch.equal(constant, constant[:, torch.randperm(len(orbit))])  # not constant overall
    x = images()
    with model.replaced_first_layer(constant):
        assert torch.equal(model.first_layer_weight, constant)
        invariant = ur.unit_responses(model, x, model.L // 2)
    assert invariant.change.max() < 1e-4 and spread(invariant.before) > 0.01
    broken = constant.clone()
    first_order1 = next(i for i, c in enumerate(model.input_channels) if c.order == 1)
    broken[:, first_order1] += 3.0
    with model.replaced_first_layer(broken):
        assert ur.unit_responses(model, x, model.L // 2).change.min() > 1e-3


@pytest.mark.slow
def test_measured_change_follows_the_spectral_invariance_score_on_the_shipped_run():
    """Units whose W₁ puts more energy at rotation frequency 0 change less under a 90° turn and under one
    step π/L: a negative rank correlation, far from chance over 512 units."""
    model = ur.run_model(SHIPPED_SLE)
    scores = spectra.invariance_scores(spectra.first_layer(model))
    for m in (model.L // 2, 1):
        result = ur.run_responses(SHIPPED_SLE, m, 100)
        rho, p_value = spearmanr(scores, result.change)
        assert rho < 0 and p_value < 1e-6, (m, rho, p_value)
        assert ur.rank_correlation(scores, result.change) == pytest.approx(rho)
        assert result.source and len(result.before) == 100
    assert ur.run_responses(SHIPPED_SLE, 1, 100) is result  # cached
    assert ur.cached_responses(SHIPPED_SLE, 1 + 2 * model.L, 100) is result  # m mod 2L
    assert ur.cached_responses(SHIPPED_SLE, 1, 37) is None  # a batch never asked for


# -- bad input -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1.5, 2.0, True, "2", None])
def test_m_must_be_an_integer(m):
    with pytest.raises(ValueError, match="must be an integer"):
        ur.unit_responses(free_model(), images(2), m)


@pytest.mark.parametrize("bad, match", [
    (images(2).astype(np.float32), "must be uint8"),
    (images(2).transpose(0, 2, 3, 1), r"shape \(N, 3, H, W\)"),
    (images(2)[:0], r"N ≥ 1"),
    (images(2)[..., :28, :28], "scatters 32×32 images"),
    (images(2).tolist(), "numpy uint8 array"),
])
def test_images_must_be_uint8_rgb_of_the_models_size(bad, match):
    with pytest.raises(ValueError, match=match):
        ur.unit_responses(free_model(), bad, 1)


def test_a_model_or_run_that_is_not_an_sle_is_refused():
    from explorer.nets import build_model

    with pytest.raises(ValueError, match="not an SLE-like model"):
        ur.unit_responses(build_model("cnn13", width=4), images(2), 1)
    with pytest.raises(ValueError, match="not an SLE"):
        ur.run_responses("cnn13-44da76659d19", 1, 10)
    with pytest.raises(ValueError, match="cannot load run"):
        ur.run_responses("sle-000000000000", 1, 10)
    with pytest.raises(ValueError, match="framing must be one of"):
        ur.unit_responses(free_model(), images(2), 1, framing="square")
    with pytest.raises(ValueError, match="batch size"):
        ur.run_responses(SHIPPED_SLE, 1, 0)
