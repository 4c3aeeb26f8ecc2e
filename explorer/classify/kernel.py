"""Features streamed from the feature store, their statistics, and Gaussian-kernel blocks.

Stored features are (N, colour, path, h, w) memmaps of up to 9.5 GB (the roto-translation scattering
of the 50,000 CIFAR-10 training images): they are never loaded whole. `blocks` reads rows in chunks
of about `BLOCK_BYTES` and gives them as float32 torch tensors, log(|S| + ε) and, once the training
statistics are known, standardised. The statistics are accumulated in float64 (Chan's pairwise
merge of per-block means and squared deviations, so that nothing cancels); kernels are computed as
‖x‖² + ‖y‖² − 2 x·y with float32 products (the bulk of the work) and float64 norms and sums. The
results are deterministic for given inputs: the same blocks in the same order give the same bits,
which is what lets a stored model reproduce its stored test accuracy exactly.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from explorer.classify.settings import LOG_EPSILON

BLOCK_BYTES = 128 * 2**20  # float32 rows read and transformed at once
KERNEL_BLOCK = 1024  # rows of a Gram block (its float32 product and float64 sums stay small)
_MIN_STD = 1e-12  # a feature this flat is constant: standardised to 0, not divided by ~0


class Standardiser:
    """Per-feature training mean and standard deviation (float64): x ↦ (x − mean) / std; a constant
    feature (std below 1e-12) is mapped to 0 (its std is stored as 1)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self._cache: dict = {}

    def on(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._cache:
            self._cache[key] = (torch.from_numpy(self.mean).to(device, torch.float32),
                                torch.from_numpy(self.std).to(device, torch.float32))
        return self._cache[key]


def block_rows(features: np.ndarray) -> int:
    """Rows per block: about BLOCK_BYTES of float32."""
    return max(1, BLOCK_BYTES // (4 * feature_count(features)))


def feature_count(features: np.ndarray) -> int:
    return int(np.prod(features.shape[1:]))


def blocks(features: np.ndarray, rows: np.ndarray | None = None, *,
           standardiser: Standardiser | None = None, device=None, rows_per_block: int | None = None,
           desc: str | None = None, progress: bool = True) -> Iterator[tuple[slice, torch.Tensor]]:
    """(positions, x) for consecutive blocks of ``rows`` (indices into ``features``; None: all, in
    order). ``x`` is float32 (b, D) on ``device``: log(|S| + 1e-6), standardised when a
    ``standardiser`` is given; ``positions`` slices ``rows`` (or the split) to the block's rows."""
    device = torch.device(device or "cpu")
    total = len(features) if rows is None else len(rows)
    step = rows_per_block or block_rows(features)
    width = feature_count(features)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress or desc is None,
              leave=False) as bar:
        for start in range(0, total, step):
            stop = min(start + step, total)
            if rows is None:  # a copy of our own: the transforms below work in place
                raw = np.array(features[start:stop], dtype=np.float32, order="C")
            else:  # fancy indexing copies already
                raw = np.ascontiguousarray(features[np.asarray(rows[start:stop])], dtype=np.float32)
            raw = raw.reshape(stop - start, width)
            x = torch.from_numpy(raw).to(device)
            x = log_features(x)
            if standardiser is not None:
                standardise_(x, standardiser)
            yield slice(start, stop), x
            bar.update(stop - start)


def log_features(x: torch.Tensor) -> torch.Tensor:
    """log(|x| + 1e-6), in place when ``x`` is a float32 tensor of its own."""
    return x.abs_().add_(LOG_EPSILON).log_()


class Moments:
    """Per-feature count, mean and sum of squared deviations, accumulated block by block in
    float64 and merged pairwise (Chan, Golub & LeVeque): no sum of squares that could cancel."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, None, None

    def add(self, x: torch.Tensor) -> None:
        x = x.double()
        n = x.shape[0]
        if n == 0:
            return
        block_mean = x.mean(0)
        block_m2 = (x - block_mean).square_().sum(0)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, block_mean, block_m2
            return
        delta = block_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + block_m2 + delta.square_() * (self.count * n / total)
        self.count = total

    def standardiser(self) -> Standardiser:
        """Mean and population standard deviation (constant features: std 1)."""
        if self.mean is None:
            raise ValueError("no training features to standardise with: the training set is empty.")
        std = (self.m2 / self.count).sqrt_().cpu().numpy()
        std[std < _MIN_STD] = 1.0
        return Standardiser(self.mean.cpu().numpy(), std)


def statistics(features: np.ndarray, rows: np.ndarray | None = None, *, device=None,
               desc: str | None = "statistics", progress: bool = True) -> Standardiser:
    """Per-feature mean and standard deviation of log(|S| + 1e-6) over ``rows`` (None: all) of
    stored features, streamed (`Moments`)."""
    moments = Moments()
    for _, x in blocks(features, rows, device=device, desc=desc, progress=progress):
        moments.add(x)
    return moments.standardiser()


def standardise_(x: torch.Tensor, standardiser: Standardiser) -> torch.Tensor:
    """(x − mean) / std in place, as `blocks` does it (float32, the same operations)."""
    mean, std = standardiser.on(x.device)
    return x.sub_(mean).div_(std)


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """‖x_i‖² in float64 of the rows of float32 ``x``, KERNEL_BLOCK rows at a time (a float64 copy
    of a whole 10,000-image subset of roto-translation features would take 3.8 GB)."""
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], KERNEL_BLOCK):
        out[start:start + KERNEL_BLOCK] = x[start:start + KERNEL_BLOCK].double().square_().sum(1)
    return out


def squared_distances(x: torch.Tensor, y: torch.Tensor, x_norms: torch.Tensor,
                      y_norms: torch.Tensor) -> torch.Tensor:
    """‖x_i − y_j‖² (float64, ≥ 0) from a float32 product and float64 squared norms."""
    product = (x @ y.T).double()
    return (x_norms[:, None] + y_norms[None, :]).sub_(product.mul_(2)).clamp_(min=0)


def gaussian(distances: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(−d² / (2σ²)) of squared distances, in place."""
    return distances.mul_(-1.0 / (2.0 * sigma * sigma)).exp_()


def gram(x: torch.Tensor, sigma: float, *, desc: str | None = "Gram matrix",
         progress: bool = True) -> np.ndarray:
    """The Gaussian Gram matrix (n, n) float64 of the rows of ``x`` (float32), in KERNEL_BLOCK
    blocks; only the blocks on and above the diagonal are computed, the rest mirrored."""
    n = x.shape[0]
    norms = squared_norms(x)
    out = np.empty((n, n), dtype=np.float64)
    starts = range(0, n, KERNEL_BLOCK)
    with tqdm(total=len(starts) * (len(starts) + 1) // 2, desc=desc, unit="block",
              disable=not progress or desc is None, leave=False) as bar:
        for i in starts:
            a = slice(i, min(i + KERNEL_BLOCK, n))
            for j in starts[i // KERNEL_BLOCK:]:
                b = slice(j, min(j + KERNEL_BLOCK, n))
                block = gaussian(squared_distances(x[a], x[b], norms[a], norms[b]), sigma)
                out[a, b] = block.cpu().numpy()
                if j != i:
                    out[b, a] = out[a, b].T
                bar.update(1)
    np.fill_diagonal(out, 1.0)  # exp(0): rounding of ‖x‖² + ‖x‖² − 2 x·x left aside
    return out


def kernel_to(x: torch.Tensor, y: torch.Tensor, y_norms: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian kernel (len x, len y) float64 between a block ``x`` and reference rows ``y``."""
    out = torch.empty((x.shape[0], y.shape[0]), dtype=torch.float64, device=x.device)
    norms = squared_norms(x)
    for j in range(0, y.shape[0], KERNEL_BLOCK):
        b = slice(j, j + KERNEL_BLOCK)
        out[:, b] = gaussian(squared_distances(x, y[b], norms, y_norms[b]), sigma)
    return out


def mean_norm(x: torch.Tensor) -> float:
    """Mean Euclidean norm of the rows of ``x`` (float64 sums): the paper's σ when ``x`` holds the
    standardised training vectors."""
    return float(squared_norms(x).sqrt_().mean())
