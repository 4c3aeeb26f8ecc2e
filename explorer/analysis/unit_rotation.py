"""How each unit of an SLE's first layer answers when its input image turns (issue 12, "Rotation invariance in
learned weights"): rotate a batch of test images by m·π/L, scatter the images and their rotations with the
model's own scattering, and compare every unit's response before and after.

**Response.** Unit k's response to an image x is its first-layer pre-activation averaged over positions,

    r_k(x) = mean_u Σ_c W₁[k, c] · BN(S x)_c(u),

i.e. W₁ (what `explorer.analysis.spectra` analyses) applied to the BatchNorm-normalised scattering coefficients
(the model's input norm, in inference mode), averaged over the h×w positions of the map: a rotation moves
positions, so the spatial mean is the quantity one can compare. ``after_relu`` gives the same average taken
after the unit's BatchNorm and ReLU (the first layer's output).

**Measured change.** Per unit, over the batch of N images,

    change_k = ‖r_k(rot X) − r_k(X)‖ / ‖r_k(X) − mean r_k(X)‖,

the size of the change under rotation relative to how much the unit's response varies from image to image
(the spread, not the raw norm: the spatial mean carries a common offset that would hide any change). 0 means
invariant; about √2 means the rotated response is as unrelated as another image's. ``correlation`` is the
Pearson correlation of r_k(X) and r_k(rot X) over the batch.

**Rotations.** m·π/L counter-clockwise (as displayed, like ``np.rot90``), m any integer (taken mod 2L).
At multiples of 90° the pixels are permuted exactly (``np.rot90``) and the scattering's angles shift
cyclically by m (θ ↦ θ + m mod L); in between, each colour plane is rotated by bilinear interpolation
(`explorer.analysis.invariance.rotate`), which is approximate. For the *map* to turn exactly too, the rotation
must map the scattering's sampling grid (one sample every 2^J pixels, 8×8 on CIFAR, not centred on the image)
onto itself, and the content must stay clear of the reflect-padded border. So there are two framings:

- ``"disk"`` (default): every image is multiplied by a disk window centred on the sampling grid's centre
  (pixel (14, 14) on CIFAR at J = 2), vanishing beyond the radius that keeps the content clear of the padded
  border (9.5 pixels there), and rotated about that centre. At multiples of 90° the scattering of the rotated
  image is then that of the image with its map turned and its angles shifted, up to float32 rounding (≈1e-5):
  a unit whose W₁ (and input statistics) do not change when θ shifts, such as the structured SLE at band 0,
  answers the same, and any change measured is the unit's own.
- ``"full"``: the whole 32×32 image, rotated about its centre. Even at 90° the sampling grid then moves by
  2^J − 1 pixels and the borders come from the reflect padding: an exactly invariant unit changes by about
  10 % (90°) to 25 % (180°) of its spread (measured on a band-0 model), so small changes mean little here.

Computation side only: no UI import. Batched torch in inference mode on the model's device; `run_responses`
caches by (run, m, batch).
"""
from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from explorer.lru import SharedLRU

FRAMINGS = ("disk", "full")
BATCH = 100  # images per scattering call: bounded memory on any device
ROUNDING = 1e-5  # spreads below this (relative) are float32 rounding, not variation


# -- checks -------------------------------------------------------------------------------------------------

def check_m(m) -> int:
    """m as an int (numpy integers accepted); ValueError for anything else (a float, a bool, text)."""
    if isinstance(m, (bool, np.bool_)) or not isinstance(m, numbers.Integral):
        raise ValueError(f"the rotation m (in steps of π/L) must be an integer, got {m!r}.")  # noqa: TRY004 (one error type for bad input)
    return int(m)


def check_images(images, shape: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 images (N, 3, H, W) with N ≥ 1 (and (H, W) = shape when given); ValueError otherwise."""
    if not isinstance(images, np.ndarray):
        raise ValueError(  # noqa: TRY004 (one error type for bad input)
            f"images must be a numpy uint8 array (N, 3, H, W), got {type(images).__name__}.")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0–255, as the test set stores them), got {images.dtype}.")
    if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise ValueError(f"images must have shape (N, 3, H, W) with N ≥ 1 (RGB planes), got {images.shape}.")
    if shape is not None and tuple(images.shape[-2:]) != tuple(shape):
        raise ValueError(f"the model scatters {shape[0]}×{shape[1]} images, got {images.shape[-2]}×"
                         f"{images.shape[-1]}.")
    return images


def check_framing(framing: str) -> str:
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}.")
    return framing


def check_model(model) -> None:
    """ValueError unless the model is SLE-like (a ScatteringSLE: scattering, input norm and W₁)."""
    from explorer.nets import ScatteringSLE

    if not isinstance(model, ScatteringSLE):
        raise ValueError(  # noqa: TRY004 (one error type for bad input)
            f"{type(model).__name__} is not an SLE-like model: unit responses need a scattering, "
            "an input BatchNorm and a first layer W₁ (a ScatteringSLE such as sle or sle_fourier).")


# -- rotations ----------------------------------------------------------------------------------------------

def degrees(m: int, L: int) -> float:
    """The angle of m steps of π/L, in degrees within [0, 360)."""
    return (check_m(m) % (2 * L)) * 180.0 / L


def is_exact(m: int, L: int) -> bool:
    """Whether m·π/L is a multiple of 90° (np.rot90: exact on the pixel grid; a cyclic shift of θ by m)."""
    return (2 * check_m(m)) % L == 0


@dataclass(frozen=True)
class Frame:
    """Where the rotation acts on (H, W) images for a scattering (J, output h×w, padding): about `centre`
    (the sampling grid's centre with framing "disk", the image centre with "full"), on the square
    `crop` = [0, side)² (disk) or the whole image (full), after multiplying by `window`."""

    framing: str
    centre: tuple[float, float]
    side: int
    window: np.ndarray  # (H, W) float64 in [0, 1]
    radius: float | None


@functools.lru_cache(maxsize=8)
def frame(framing: str, shape: tuple[int, int], J: int) -> Frame:
    """The framing of `unit_responses` (module docstring) for images of `shape` and a scattering of scale J."""
    from explorer.scattering.filters import padded_shape
    from explorer.scattering.padding import pad_widths

    check_framing(framing)
    H, W = shape
    if framing == "full":
        return Frame("full", ((H - 1) / 2, (W - 1) / 2), min(H, W), np.ones(shape), None)
    M, N = padded_shape(shape, J)
    h, w = M // 2**J - 2, N // 2**J - 2  # Scattering2D.output_shape; samples at pixels 0, 2^J, …
    top, _, left, _ = pad_widths(shape, J)
    centre = 2**J * (min(h, w) - 1) / 2
    # Content strictly inside rows/columns > pad: the reflect padding then copies zeros only.
    radius = centre - max(top, left) - 0.5
    side = int(2 * centre) + 1
    if radius <= 1 or side > min(H, W) or centre != int(centre):
        raise ValueError(f"no disk framing for {H}×{W} images at J = {J}; use framing='full'.")
    rows, cols = np.indices(shape, dtype=np.float64)
    r = np.hypot(rows - centre, cols - centre)
    inner = radius / 2
    t = np.clip((r - inner) / (radius - inner), 0.0, 1.0)
    window = 0.5 * (1 + np.cos(np.pi * t))
    return Frame("disk", (centre, centre), side, window, radius)


def rotate_images(images, m: int, L: int, framing: str = "disk", J: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(framed, rotated): uint8 images (N, 3, H, W) as float32 in [0, 1] multiplied by the framing's window,
    and the same rotated by m·π/L counter-clockwise about the framing's centre, each colour plane on its own
    (np.rot90 at multiples of 90°, `invariance.rotate`'s bilinear interpolation otherwise)."""
    from .invariance import rotate

    images = check_images(images)
    m, L = check_m(m), int(L)
    fr = frame(check_framing(framing), tuple(images.shape[-2:]), int(J))
    framed = images.astype(np.float64) / 255.0 * fr.window
    s = fr.side
    square = framed[..., :s, :s]
    if is_exact(m, L):
        turned = np.rot90(square, (2 * m // L) % 4, axes=(-2, -1))
    else:
        angle = degrees(m, L)
        turned = np.stack([np.stack([rotate(plane, angle) for plane in image]) for image in square])
    rotated = framed.copy() if framing == "full" else np.zeros_like(framed)
    rotated[..., :s, :s] = turned
    return framed.astype(np.float32), rotated.astype(np.float32)


# -- responses ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # compared by identity: its arrays have no single truth value
class Responses:
    """Every unit's response (module docstring) to N images before and after a rotation by m·π/L."""

    m: int
    L: int
    degrees: float
    exact: bool  # a multiple of 90°
    framing: str
    before: np.ndarray = field(repr=False)  # (N, K) pre-activation, spatial mean
    after: np.ndarray = field(repr=False)  # (N, K)
    before_relu: np.ndarray = field(repr=False)  # (N, K) after the unit's BatchNorm and ReLU, spatial mean
    after_relu: np.ndarray = field(repr=False)
    framed: np.ndarray = field(repr=False)  # (N, 3, H, W) float32 in [0, 1]: the images as scattered
    rotated: np.ndarray = field(repr=False)  # (N, 3, H, W)
    source: str = ""
    run: str | None = None

    @property
    def change(self) -> np.ndarray:
        """(K,) ‖r_k(rot X) − r_k(X)‖ / ‖r_k(X) − mean r_k(X)‖ (pre-activation)."""
        return relative_change(self.before, self.after)

    @property
    def change_relu(self) -> np.ndarray:
        return relative_change(self.before_relu, self.after_relu)

    @property
    def correlation(self) -> np.ndarray:
        return correlation(self.before, self.after)


def relative_change(before, after) -> np.ndarray:
    """(K,) per column: ‖after − before‖ / ‖before − mean(before)‖ over the rows (0 when both vanish; inf
    when the unit does not vary across images but changes under rotation)."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    num = np.linalg.norm(after - before, axis=0)
    den = np.linalg.norm(before - before.mean(axis=0), axis=0)
    out = np.full(num.shape, np.inf)
    np.divide(num, den, out=out, where=den > 0)
    out[(den == 0) & (num == 0)] = 0.0
    return out


def correlation(before, after) -> np.ndarray:
    """(K,) Pearson correlation over the rows of each column of `before` with the same column of `after`
    (nan when one of them is constant)."""
    a = np.asarray(before, np.float64) - np.mean(before, axis=0)
    b = np.asarray(after, np.float64) - np.mean(after, axis=0)
    den = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    out = np.full(a.shape[1], np.nan)
    np.divide((a * b).sum(axis=0), den, out=out, where=den > 0)
    return out


def _model_device(model) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def unit_maps(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pre, relu): every unit's response (spatial means, (N, K) float64) to float images (N, 3, H, W) in
    [0, 1]: the model's own scattering and input norm, W₁ (`first_layer_weight`, which both the free and the
    structured SLE expose), then the unit's BatchNorm and ReLU (`encoder[1:3]`), in inference mode."""
    from explorer.nets.extract import inference

    device = _model_device(model)
    pre_parts, relu_parts = [], []
    with inference(model):
        weight = model.first_layer_weight
        weight = weight.reshape(weight.shape[0], -1, 1, 1)
        for start in range(0, len(images), BATCH):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH])).to(device, torch.float32)
            features = model.features(x).flatten(1, 2)
            pre = F.conv2d(model.input_norm(features), weight.to(features.dtype))
            relu = model.encoder[2](model.encoder[1](pre))
            pre_parts.append(pre.mean(dim=(-2, -1)).double().cpu())
            relu_parts.append(relu.mean(dim=(-2, -1)).double().cpu())
    return torch.cat(pre_parts).numpy(), torch.cat(relu_parts).numpy()


def unit_responses(model, images, m: int, framing: str = "disk", source: str = "",
                   run: str | None = None, before: tuple[np.ndarray, np.ndarray] | None = None) -> Responses:
    """Every unit's response to uint8 images (N, 3, H, W) and to the same images rotated by m·π/L (L: the
    model's), both scattered by the model itself (module docstring). `before`: the (pre, relu) responses to
    the unrotated images when already known (they do not depend on m). ValueError for a model that is not
    SLE-like, m not an integer, images not uint8 (N, 3, H, W) of the model's size, an unknown framing."""
    check_model(model)
    m = check_m(m)
    images = check_images(images, model.scattering.shape)
    L, J = int(model.L), int(model.J)
    framed, rotated = rotate_images(images, m, L, framing, J)
    if before is None:
        before = unit_maps(model, framed)
    after = unit_maps(model, rotated)
    return Responses(m=m % (2 * L), L=L, degrees=degrees(m, L), exact=is_exact(m, L), framing=framing,
                     before=before[0], after=after[0], before_relu=before[1], after_relu=after[1],
                     framed=framed, rotated=rotated, source=source, run=run)


# -- stored runs, cached ------------------------------------------------------------------------------------

MAX_MODELS, MAX_RESPONSES = 2, 64
_MODELS = SharedLRU(MAX_MODELS)  # (store, run) → model
_RESPONSES = SharedLRU(MAX_RESPONSES)  # (store, run, m, batch, framing) → Responses
_BEFORE = SharedLRU(2 * MAX_MODELS)  # (store, run, batch, framing) → the unrotated batch's maps


def _store_key() -> str:
    from explorer.runs import RunStore

    return str(RunStore().root)


def run_model(run_id: str):
    """The stored SLE-like run's model (on CUDA when present, else the CPU), loaded once per process and
    store. ValueError when the run is missing, damaged or not SLE-like."""
    from .threshold import load_sle

    key = (_store_key(), run_id)
    found = _MODELS.get(key)
    if found is not None:
        return found
    try:
        _, model = load_sle(run_id)
    except OSError as exc:  # a missing run (RunNotFoundError), an unreadable file
        raise ValueError(f"cannot load run {run_id}: {exc}") from None
    return _MODELS.put(key, model)


def batch_images(n_images: int, prefer_full: bool = False):
    """`explorer.data.samples.test_images`: n_images test images balanced over the classes, from the
    configured CIFAR-10 test set when `prefer_full` and it exists, else the 300 shipped ones."""
    from explorer.data.samples import test_images

    if isinstance(n_images, bool) or not isinstance(n_images, numbers.Integral) or n_images < 1:
        raise ValueError(f"the batch size must be a positive integer, got {n_images!r}.")
    chosen = test_images(int(n_images), prefer_full=prefer_full)
    if len(chosen.labels) < n_images:
        raise ValueError(f"{n_images} images asked for, but {chosen.source} holds only {len(chosen.labels)}.")
    return chosen


def _cache_key(run_id: str, m: int, L: int, chosen, framing: str) -> tuple:
    return (_store_key(), run_id, m % (2 * L), chosen.source, chosen.indices.tobytes(), framing)


def cached_responses(run_id: str, m: int, n_images: int = 100, prefer_full: bool = False,
                     framing: str = "disk") -> Responses | None:
    """What `run_responses` would return if it is cached already, else None (never computes)."""
    m = check_m(m)
    model = _MODELS.get((_store_key(), run_id))
    if model is None:
        return None
    key = _cache_key(run_id, m, int(model.L), batch_images(n_images, prefer_full), framing)
    return _RESPONSES.get(key)


def run_responses(run_id: str, m: int, n_images: int = 100, prefer_full: bool = False,
                  framing: str = "disk") -> Responses:
    """`unit_responses` of a stored SLE-like run on `batch_images(n_images, prefer_full)`, cached by
    (store, run, m mod 2L, batch, framing): a second call with the same arguments returns at once."""
    m = check_m(m)
    check_framing(framing)
    model = run_model(run_id)
    L = int(model.L)
    chosen = batch_images(n_images, prefer_full)
    key = _cache_key(run_id, m, L, chosen, framing)
    found = _RESPONSES.get(key)
    if found is not None:
        return found
    batch_key = key[:2] + key[3:]  # the unrotated images' responses serve every m
    before = _BEFORE.get_or_compute(
        batch_key, lambda: unit_maps(model, rotate_images(chosen.images, 0, L, framing, int(model.J))[0]))
    result = unit_responses(model, chosen.images, m, framing, source=chosen.source, run=run_id, before=before)
    for array in (result.before, result.after, result.before_relu, result.after_relu, result.framed,
                  result.rotated):
        array.flags.writeable = False
    return _RESPONSES.put(key, result)


def clear_cache() -> None:
    for cache in (_MODELS, _RESPONSES, _BEFORE):
        cache.clear()


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two (K,) arrays over the entries finite in both: how well the spectral
    invariance score orders the measured changes. nan when either is constant there up to rounding (the
    structured SLE at band 0: every score is 1 and every change at 90° is 0, give or take 1e-7, whose ranks
    would be noise)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    flat = lambda x: np.ptp(x) <= ROUNDING * max(1.0, float(np.abs(x).max()))
    if keep.sum() < 3 or flat(a[keep]) or flat(b[keep]):
        return float("nan")
    return float(spearmanr(a[keep], b[keep])[0])
