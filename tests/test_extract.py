"""The one extractor of inner representations (explorer.nets.extract): CNN13's inner maps,
spatially averaged batch by batch, in inference mode, the model's mode given back."""
from __future__ import annotations

import pytest
import torch

from explorer.nets import CNN13, N_INNER, ScatteringSLE
from explorer.nets.extract import inference, inner_means, inner_representations


def _trained_statistics_model(width: int = 4) -> CNN13:
    """A small CNN13 whose BN running statistics differ from the batch statistics."""
    torch.manual_seed(0)
    model = CNN13(width)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 3, 32, 32) * 2)  # other statistics than the test images
    return model


def _hand_inner_means(model: CNN13, x: torch.Tensor) -> list[torch.Tensor]:
    """The spatial means of the 12 inner non-linearities, layer by layer, in eval mode."""
    stem_conv, stem_norm, stem_rho = model.stem
    means, h = [], None
    with torch.no_grad():
        h = stem_rho(torch.nn.functional.batch_norm(
            stem_conv((x - model.mean) / model.std), stem_norm.running_mean, stem_norm.running_var,
            eps=stem_norm.eps))
        for conv, norm, rho in zip(model.convs, model.norms, model.rhos):
            h = rho(torch.nn.functional.batch_norm(conv(h), norm.running_mean, norm.running_var,
                                                   eps=norm.eps))
            means.append(h.mean(dim=(2, 3)))  # dropout is the identity at inference
    return means


def test_inner_means_match_a_hand_computation_batch_by_batch():
    model = _trained_statistics_model().eval()
    x = torch.rand(5, 3, 32, 32)
    per_batch = list(inner_means(model, [x[:2], x[2:]]))
    assert len(per_batch) == 2 and all(len(means) == N_INNER for means in per_batch)
    assert [m.shape for m in per_batch[0]] == [(2, 4)] * N_INNER
    joined = [torch.cat([first, second]) for first, second in zip(*per_batch)]
    for got, expected in zip(joined, _hand_inner_means(model, x)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_the_extractor_runs_in_inference_mode_and_gives_the_train_mode_back():
    model = _trained_statistics_model()
    x = torch.rand(4, 3, 32, 32)
    seen = []
    hook = model.convs[0].register_forward_hook(
        lambda module, args, out: seen.append((torch.is_inference_mode_enabled(), module.training,
                                               model.dropout.training)))
    assert model.training
    (from_train,) = inner_means(model, [x])
    assert model.training  # the mode it found
    hook.remove()
    assert seen == [(True, False, False)]  # inference mode, BN running statistics, dropout off
    (from_eval,) = inner_means(model.eval(), [x])
    assert not model.training
    for a, b in zip(from_train, from_eval):
        assert torch.equal(a, b)
    # In train mode the batch statistics and dropout would give other values.
    model.train()
    assert not torch.allclose(model.inner_maps(x)[-1].mean(dim=(2, 3)), from_eval[-1])


def test_the_extractor_reads_a_generator_one_batch_at_a_time_and_lends_the_model_back():
    model = _trained_statistics_model().train()
    consumed = []

    def batches():
        for i in range(3):
            consumed.append(i)
            yield torch.rand(2, 3, 32, 32)

    results = inner_means(model, batches())
    assert consumed == []  # nothing computed before it is asked for
    first = next(results)
    assert consumed == [0] and len(first) == N_INNER
    # Between batches the caller's code runs in its own mode, with the model as it found it.
    assert model.training and not torch.is_inference_mode_enabled()
    assert len(list(results)) == 2 and consumed == [0, 1, 2]


def test_the_mode_comes_back_on_an_exception_and_models_without_inner_maps_are_named():
    model = _trained_statistics_model().train()

    def failing():
        yield torch.rand(1, 3, 32, 32)
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        list(inner_means(model, failing()))
    assert model.training
    with pytest.raises(ValueError), inference(model):
        assert not model.training
        raise ValueError
    assert model.training
    with pytest.raises(TypeError, match="no inner_maps"):
        inner_representations(ScatteringSLE(widths=(4,)), [])


def test_full_maps_follow_the_strides():
    model = CNN13(4)
    (maps,) = inner_representations(model, [torch.rand(2, 3, 32, 32)])
    assert [m.shape for m in maps] == [(2, 4, 32, 32)] * 4 + [(2, 4, 16, 16)] * 4 + [(2, 4, 8, 8)] * 4
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)  # forward: logits only
