"""Scattering + SLE: explicit inputs (images or stored features), W₁ read and replaced by path,
the scattering filters as non-persistent buffers (stored runs load and evaluate unchanged)."""
from __future__ import annotations

import pytest
import torch

from explorer.nets import ScatteringSLE
from explorer.runs import RunStore
from explorer.scattering import Path, Scattering2D

SHIPPED_SLE = "sle-695ad4593697"


def _model(seed: int = 0) -> ScatteringSLE:
    torch.manual_seed(seed)
    model = ScatteringSLE(J=2, L=4, widths=(6, 5)).eval()
    with torch.no_grad():  # running statistics other than the identity
        model.input_norm.running_mean.uniform_(0, 0.1)
        model.input_norm.running_var.uniform_(0.5, 2)
    return model


def _images(n: int = 3) -> torch.Tensor:
    g = torch.arange(n * 3 * 32 * 32, dtype=torch.float32).reshape(n, 3, 32, 32)
    return (torch.sin(g * 0.37) + 1) / 2  # deterministic on every machine


def test_images_and_features_go_through_named_methods():
    model, images = _model(), _images()
    features = model.features(images)
    assert features.shape == (3, 3, 1 + 2 * 4 + 4 * 4, 8, 8)
    with torch.no_grad():
        logits = model.forward_images(images)
        assert torch.equal(logits, model.forward_features(features))
        assert torch.equal(logits, model(features))  # the call takes features: what it trains on
        assert torch.equal(logits, model(features.flatten(1, 2)))
    with pytest.raises(ValueError, match="call forward_images"):
        model(images)  # images are never guessed from a shape
    with pytest.raises(ValueError, match=r"images must be \(B, 3, H, W\)"):
        model.forward_images(features)


def test_w1_is_read_by_colour_and_path():
    model = _model()
    columns = model.weights_by_path()
    assert list(columns) == [(c.colour, c.path) for c in model.input_channels]
    assert torch.equal(columns[("green", Path(1, 0, 2))], model.first_layer_weight[:, 25 + 1 + 2])
    assert model.input_channels[-1].path == Path(2, 0, 3, 1, 3)


def test_replace_evaluate_restore_is_bit_identical():
    model, images = _model(), _images()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model.forward_images(images)
        w1 = model.first_layer_weight.clone()
        order_2 = [c.path.order == 2 for c in model.input_channels]
        thresholded = w1 * ~torch.tensor(order_2)
        with model.replaced_first_layer(thresholded) as replaced:
            assert replaced is model and torch.equal(model.first_layer_weight, thresholded)
            during = model.forward_images(images)
        assert not torch.equal(during, before)
        # The same replacement by path: only the named columns change.
        zeros = {key: torch.zeros(w1.shape[0]) for key, c in zip(model.weights_by_path(),
                                                                 model.input_channels)
                 if c.path.order == 2}
        with model.replaced_first_layer(zeros):
            assert torch.equal(model.forward_images(images), during)
        with pytest.raises(RuntimeError, match="analysis failed"), \
                model.replaced_first_layer(torch.zeros_like(w1)):
            raise RuntimeError("analysis failed")
        after = model.forward_images(images)
    assert torch.equal(after, before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="W₁ must have shape"), \
            model.replaced_first_layer(torch.zeros(2, 2)):
        pass
    with pytest.raises(KeyError, match="not input channels"), \
            model.replaced_first_layer({("red", Path(2, 1, 0, 0, 0)): torch.zeros(6)}):
        pass


def test_scattering_filters_are_buffers_outside_the_state_dict():
    model = _model()
    buffers = dict(model.named_buffers())
    assert {"scattering.psi_0", "scattering.phi_1", "scattering.psi2_0_1"} <= set(buffers)
    assert not any(key.startswith("scattering.") for key in model.state_dict())
    moved = model.to("meta")  # moves every tensor, as for any module
    assert all(b.device.type == "meta" for b in moved.scattering.buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_filters_follow_the_module_to_the_gpu():
    model, images = _model(), _images()
    with torch.no_grad():
        cpu = model.forward_images(images)
        gpu = model.to("cuda").forward_images(images.cuda())
    assert all(b.is_cuda for b in model.scattering.buffers())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)


def test_a_shipped_sle_run_loads_and_evaluates_as_before(tmp_path):
    run = RunStore(tmp_path).load(SHIPPED_SLE)
    model = run.build_model()  # strict load: the buffers add no key
    assert set(model.state_dict()) == set(run.load_weights())
    images = _images(2)
    mc = run.config["model_config"]
    with torch.no_grad():
        logits = model.forward_images(images)
        features = Scattering2D(mc["J"], (32, 32), mc["L"])(images)
        assert torch.equal(logits, model(features))
    # Logits of the same images before the filters became buffers (commit 3de6994).
    expected = torch.tensor([53.03722763, 21.39172935, 10.59988880, -16.04664230, -48.12866592,
                             -44.78077316, 2.17560172, -65.17694092, 44.33350754, 41.06847763])
    torch.testing.assert_close(logits[0], expected, rtol=1e-5, atol=1e-4)
