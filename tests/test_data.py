"""Data layer: CIFAR-10 loading, balanced subsets, single images, and the `explorer data` CLI."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.data import (
    DatasetFormatError,
    DatasetNotFoundError,
    ImageError,
    balanced_subset_indices,
    download_cifar10,
    find_cifar10,
    list_images,
    load_cifar10,
    load_image_file,
    sample_image,
    synthetic_image,
)
from explorer.data import cifar10 as cifar_module

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 20  # images per fake batch


# --- a tiny fake CIFAR-10 in the official layout ---------------------------------------------------------


def _known_image() -> np.ndarray:
    """(3, 32, 32) uint8: red = 8 * row, green = 8 * column, blue = 77."""
    rows, cols = np.indices((32, 32))
    return np.stack([8 * rows, 8 * cols, np.full((32, 32), 77)]).astype(np.uint8)


def _fake_batches() -> dict[str, dict]:
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([*cifar_module.BATCHES["train"], "test_batch"]):
        data = rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
        if i == 0:
            data[0] = _known_image().reshape(-1)  # the official row layout: R plane, G plane, B plane
        labels = [int(v) for v in (np.arange(PER_BATCH) + i) % 10]
        batches[name] = {
            "batch_label": name,
            "labels": labels,
            "data": data,
            "filenames": [f"{i}.png"] * PER_BATCH,
        }
    return batches


def _write_fake_cifar(root: Path, archive: bool) -> dict[str, dict]:
    """The archive `root/cifar-10-python.tar.gz`, or the extracted `root/cifar-10-batches-py/`."""
    batches = _fake_batches()
    files = {name: pickle.dumps(b, protocol=2) for name, b in batches.items()}
    # The meta file uses bytes keys and names, as an `encoding="bytes"` reader of the official files sees them.
    files["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in CLASSES]}, protocol=2)
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, blob in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / "cifar-10-batches-py").mkdir()
        for name, blob in files.items():
            (root / "cifar-10-batches-py" / name).write_bytes(blob)
    return batches


@pytest.fixture
def fake_archive_dir(tmp_path) -> Path:
    _write_fake_cifar(tmp_path / "archive", archive=True)
    return tmp_path / "archive"


@pytest.fixture
def fake_folder_dir(tmp_path) -> Path:
    _write_fake_cifar(tmp_path / "folder", archive=False)
    return tmp_path / "folder"


@pytest.fixture
def fresh_store(tmp_path, monkeypatch) -> Path:
    store = tmp_path / "store"
    monkeypatch.setenv("EXPLORER_STORE", str(store))
    return store


# --- CIFAR-10 loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["archive_dir", "archive_file", "folder_dir", "batches_folder"],
)
def test_loads_every_accepted_location(where, fake_archive_dir, fake_folder_dir, fresh_store):
    location = {
        "archive_dir": fake_archive_dir,
        "archive_file": fake_archive_dir / "cifar-10-python.tar.gz",
        "folder_dir": fake_folder_dir,
        "batches_folder": fake_folder_dir / "cifar-10-batches-py",
    }[where]
    batches = _fake_batches()
    train = load_cifar10("train", data=location)
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.shape == (5 * PER_BATCH,) and train.labels.dtype == np.int64
    assert train.classes == tuple(CLASSES)
    expected = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    np.testing.assert_array_equal(train.images.reshape(len(expected), -1), expected)
    np.testing.assert_array_equal(
        train.labels, np.concatenate([batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)])
    )
    test = load_cifar10("test", data=location)
    assert test.images.shape == (PER_BATCH, 3, 32, 32)
    np.testing.assert_array_equal(test.labels, batches["test_batch"]["labels"])


def test_pixel_layout_is_rgb_planes_rows_first(fake_archive_dir, fresh_store):
    image = load_cifar10("train", data=fake_archive_dir).images[0]
    rows, cols = np.indices((32, 32))
    np.testing.assert_array_equal(image[0], 8 * rows)  # red
    np.testing.assert_array_equal(image[1], 8 * cols)  # green
    assert np.all(image[2] == 77)  # blue


def test_location_from_environment(fake_archive_dir, fresh_store, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA", str(fake_archive_dir))
    assert find_cifar10() == fake_archive_dir / "cifar-10-python.tar.gz"
    assert load_cifar10("test").images.shape[0] == PER_BATCH


def test_second_load_comes_from_the_store(fake_archive_dir, fresh_store, monkeypatch):
    first = load_cifar10("train", data=fake_archive_dir)
    cached = list(fresh_store.rglob("*.npy"))
    assert {p.name for p in cached} == {"train_images.npy", "train_labels.npy"}
    assert not list(fresh_store.rglob("*.tmp"))

    def no_reading(*args):
        raise AssertionError("the archive was read again")

    monkeypatch.setattr(cifar_module, "_read_members", no_reading)
    second = load_cifar10("train", data=fake_archive_dir)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert second.classes == first.classes


def test_changed_source_invalidates_the_cache(fake_archive_dir, fresh_store):
    load_cifar10("test", data=fake_archive_dir)
    archive = fake_archive_dir / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # same layout, different pixels
        batches = _fake_batches()
        batches["test_batch"]["data"] = np.zeros_like(batches["test_batch"]["data"])
        files = {n: pickle.dumps(b, protocol=2) for n, b in batches.items()}
        files["batches.meta"] = pickle.dumps({"label_names": CLASSES}, protocol=2)
        for name, blob in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    os.utime(archive, ns=(1, 1))  # a different mtime even on coarse-clock filesystems
    assert load_cifar10("test", data=fake_archive_dir).images.max() == 0


def test_unwritable_store_still_loads(fake_archive_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("EXPLORER_STORE", str(blocker / "store"))
    with pytest.warns(UserWarning, match="cache"):
        data = load_cifar10("test", data=fake_archive_dir)
    assert data.images.shape[0] == PER_BATCH


def test_no_location_says_how_to_fix(monkeypatch):
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        load_cifar10()
    message = str(err.value)
    assert "EXPLORER_DATA" in message and "--data" in message and "explorer data download" in message
    assert isinstance(err.value, FileNotFoundError)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist") as err:
        load_cifar10(data=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz"):
        load_cifar10(data=tmp_path / "empty")


def test_wrong_file_is_named(tmp_path, fresh_store):
    wrong = tmp_path / "notes.txt"
    wrong.write_text("hello, not an archive\n" * 100)
    with pytest.raises(DatasetFormatError, match="not a readable tar archive") as err:
        load_cifar10(data=wrong)
    assert str(wrong) in str(err.value)


def test_truncated_archive(fake_archive_dir, tmp_path, fresh_store):
    blob = (fake_archive_dir / "cifar-10-python.tar.gz").read_bytes()
    cut = tmp_path / "cut" / "cifar-10-python.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetFormatError, match="truncated") as err:
        load_cifar10("test", data=cut.parent)  # test_batch is the last member: past the cut
    assert str(cut) in str(err.value)


def test_corrupt_pickle_is_named(fake_folder_dir, fresh_store):
    (fake_folder_dir / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetFormatError, match="data_batch_3.*not a valid CIFAR-10 pickle"):
        load_cifar10("train", data=fake_folder_dir)


class _Hostile:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickle_with_code_is_refused(fake_folder_dir, fresh_store):
    path = fake_folder_dir / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({"data": _Hostile(), "labels": []}, protocol=2))
    with pytest.raises(DatasetFormatError, match="unexpected object"):
        load_cifar10("test", data=fake_folder_dir)


def test_wrong_batch_content(fake_folder_dir, fresh_store):
    path = fake_folder_dir / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, protocol=2))
    with pytest.raises(DatasetFormatError, match=r"shape \(N, 3072\)"):
        load_cifar10("test", data=fake_folder_dir)
    path.write_bytes(pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1]}, protocol=2))
    with pytest.raises(DatasetFormatError, match="4 images but 'labels'"):
        load_cifar10("test", data=fake_folder_dir)


def test_missing_batch_file(fake_folder_dir, fresh_store):
    (fake_folder_dir / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(DatasetFormatError, match="lacks data_batch_5"):
        load_cifar10("train", data=fake_folder_dir)


def test_bad_split():
    with pytest.raises(ValueError, match="split must be one of"):
        load_cifar10("validation")


def test_download_keeps_a_local_copy_whatever_its_checksum(fake_archive_dir, monkeypatch):
    import pooch

    def no_network(*args, **kwargs):
        raise AssertionError("pooch must not be called when CIFAR-10 is already there")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    assert download_cifar10(fake_archive_dir) == fake_archive_dir / "cifar-10-python.tar.gz"


def test_download_uses_the_official_url_and_md5(tmp_path, monkeypatch):
    import pooch

    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash, fname, progressbar))
        target = Path(path) / fname
        target.write_bytes(b"")
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    path = download_cifar10(tmp_path / "new")
    assert path == tmp_path / "new" / "cifar-10-python.tar.gz"
    assert calls == [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "md5:c58f30108f718f92721af3b95e74349a",
            "cifar-10-python.tar.gz",
            True,
        )
    ]


@pytest.mark.dataset
def test_real_cifar10(cifar_dir):
    train = load_cifar10("train")
    assert train.images.shape == (50000, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.classes == tuple(CLASSES)
    assert np.bincount(train.labels, minlength=10).tolist() == [5000] * 10
    test = load_cifar10("test")
    assert test.images.shape == (10000, 3, 32, 32)
    assert np.bincount(test.labels, minlength=10).tolist() == [1000] * 10
    # Natural images: per-channel means near CIFAR-10's (125.3, 123.0, 113.9), so the planes are RGB in order.
    means = train.images[:5000].mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means, [125.3, 123.0, 113.9], atol=3)
    subset = balanced_subset_indices(train.labels, 500, seed=1)
    assert np.bincount(train.labels[subset], minlength=10).tolist() == [50] * 10


# --- balanced subsets ------------------------------------------------------------------------------------


def test_subset_matches_the_authors_recipe():
    # Equal class sizes: the authors draw ONE permutation of the class size and index every class with it.
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.repeat(np.arange(10), 50))
    seed, n = 3, 100
    permute = np.random.RandomState(seed).permutation(np.arange(0, 50))[: n // 10]
    expected = np.concatenate([np.where(labels == c)[0][permute] for c in range(10)])
    np.testing.assert_array_equal(balanced_subset_indices(labels, n, seed), np.sort(expected))


def test_subset_by_hand_with_unequal_classes():
    labels = np.array([2, 0, 1, 0, 2, 2, 1, 0, 0, 1, 2, 0, 1, 2, 0])  # sizes 6, 4, 5
    seed = 7
    expected = []
    for c in range(3):
        members = [i for i, label in enumerate(labels) if label == c]
        order = np.random.RandomState(seed).permutation(len(members))
        expected += [members[k] for k in order[:2]]
    assert balanced_subset_indices(labels, 6, seed).tolist() == sorted(expected)


def test_subset_counts_seeds_and_errors():
    labels = np.repeat(np.arange(10), 100)
    a = balanced_subset_indices(labels, 100, seed=1)
    assert a.dtype == np.int64 and len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert np.bincount(labels[a], minlength=10).tolist() == [10] * 10
    np.testing.assert_array_equal(a, balanced_subset_indices(labels, 100, seed=1))
    assert not np.array_equal(a, balanced_subset_indices(labels, 100, seed=2))
    with pytest.raises(ValueError, match="multiple of the number of classes"):
        balanced_subset_indices(labels, 105, seed=1)
    with pytest.raises(ValueError, match="has only 100"):
        balanced_subset_indices(labels, 1010, seed=1)
    with pytest.raises(ValueError, match="integer array"):
        balanced_subset_indices(labels.astype(float), 100, seed=1)


# --- synthetic and sample images -------------------------------------------------------------------------


def _spectral_peak(image: np.ndarray) -> tuple[int, int]:
    """(row, column) frequency bin, signed, of the strongest Fourier coefficient."""
    spectrum = np.abs(np.fft.fft2(image - image.mean()))
    row, col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    size = image.shape[0]
    return (row + size // 2) % size - size // 2, (col + size // 2) % size - size // 2


@pytest.mark.parametrize(
    "angle, period, peaks",
    [
        (0.0, 8.0, {(0, 8), (0, -8)}),  # wave vector to the right: varies along columns
        (np.pi / 2, 8.0, {(8, 0), (-8, 0)}),  # wave vector up: varies along rows
        # Wave vector (4, 3)/5 in (x right, y up) = 4 cycles along columns, 3 cycles UP i.e. -3 along rows.
        (np.arctan2(3, 4), 64 / 5, {(-3, 4), (3, -4)}),
    ],
)
def test_grating_orientation(angle, period, peaks):
    image = synthetic_image("grating", size=64, angle=angle, period=period)
    assert image.dtype == np.float32 and image.shape == (64, 64)
    assert 0 <= image.min() and image.max() <= 1
    assert _spectral_peak(image) in peaks


def test_bar_angle_is_its_normal():
    vertical = synthetic_image("bar", size=65, angle=0.0, width=3, length=40)
    c = 32
    assert vertical[c - 15, c] == 1 and vertical[c, c - 15] == 0  # long axis up-down
    diagonal = synthetic_image("bar", size=65, angle=np.pi / 4, width=3, length=40)
    # Normal up-right, so the long axis runs up-left to down-right.
    assert diagonal[c - 10, c - 10] == 1 and diagonal[c - 10, c + 10] == 0
    grating = synthetic_image("grating", size=64, angle=np.pi / 4, period=64 / (4 * np.sqrt(2)))
    bar = synthetic_image("bar", size=64, angle=np.pi / 4, width=6, length=60)
    spec_g, spec_b = (np.abs(np.fft.fft2(x - x.mean())) for x in (grating, bar))
    row, col = _spectral_peak(grating)
    # The bar's spectrum is stronger along the grating's wave vector than along its mirror image.
    assert spec_b[row % 64, col % 64] > 5 * spec_b[row % 64, -col % 64]
    assert spec_g[row % 64, col % 64] > 5 * spec_g[row % 64, -col % 64]


def test_other_synthetic_kinds():
    disk = synthetic_image("disk", size=32, radius=8)
    np.testing.assert_array_equal(disk, np.rot90(disk))  # centred on the grid's centre
    assert disk[16, 16] == 1 and disk[0, 0] == 0
    board = synthetic_image("checkerboard", size=16, cell=4)
    assert board[0, 0] == 0 and board[0, 4] == 1 and board[4, 4] == 0
    noise = synthetic_image("noise", size=32, seed=3)
    np.testing.assert_array_equal(noise, synthetic_image("noise", size=32, seed=3))
    assert not np.array_equal(noise, synthetic_image("noise", size=32, seed=4))
    smooth = synthetic_image("noise", size=32, seed=3, sigma=2)
    assert smooth.min() == 0 and smooth.max() == 1
    assert np.abs(np.diff(smooth)).mean() < np.abs(np.diff(noise)).mean()
    for kind in list_images()["synthetic"]:
        image = synthetic_image(kind, size=20)
        assert image.shape == (20, 20) and image.dtype == np.float32


def test_synthetic_errors():
    with pytest.raises(ValueError, match="unknown synthetic image 'spiral'"):
        synthetic_image("spiral")
    with pytest.raises(ValueError, match="no parameter radius; allowed"):
        synthetic_image("grating", radius=3)
    with pytest.raises(ValueError, match="period must be > 0"):
        synthetic_image("grating", period=0)
    with pytest.raises(ValueError, match="size must be an integer"):
        synthetic_image("disk", size=3.5)


def test_sample_images():
    names = list_images()["sample"]
    assert {"camera", "astronaut", "china", "flower"} <= set(names)
    for name in names:
        image = sample_image(name)
        assert image.ndim == 2 and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.01
    assert sample_image("astronaut", color=True).shape == (3, 512, 512)
    assert sample_image("camera", color=True).shape == (512, 512)  # grayscale sources stay 2-D
    assert sample_image("china", size=64).shape == (64, 64)
    assert sample_image("china", size=48, color=True).shape == (3, 48, 48)
    with pytest.raises(ValueError, match="unknown sample image 'lena'"):
        sample_image("lena")


# --- user image files ------------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_rgba_png_flattens_on_white(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[..., 0] = 255  # red everywhere
    pixels[..., 3] = 255
    pixels[0, 1, 3] = 0  # one fully transparent pixel
    path = tmp_path / "rgba.png"
    path.write_bytes(_png(Image.fromarray(pixels, "RGBA")))
    color, note = load_image_file(path, color=True)
    assert color.shape == (3, 4, 4) and color.dtype == np.float32
    np.testing.assert_allclose(color[:, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(color[:, 0, 1], [1, 1, 1])
    assert "transparency" in note
    gray, _ = load_image_file(path)
    assert gray.shape == (4, 4)
    assert gray[0, 0] == pytest.approx(0.299, abs=1e-6) and gray[0, 1] == pytest.approx(1.0)


def test_16bit_png_keeps_its_range(tmp_path):
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000 + 7
    path = tmp_path / "deep.png"
    path.write_bytes(_png(Image.fromarray(values)))
    image, note = load_image_file(path)
    np.testing.assert_allclose(image, values / 65535, atol=1e-6)
    assert note is None


def test_grayscale_palette_and_jpeg(tmp_path):
    gray = np.arange(0, 256, 16, dtype=np.uint8).reshape(4, 4)
    image, note = load_image_file(_png(Image.fromarray(gray, "L")))  # bytes work too
    np.testing.assert_allclose(image, gray / 255, atol=1e-7)
    assert note is None
    assert load_image_file(_png(Image.fromarray(gray, "L")), color=True).image.shape == (4, 4)

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4] = (0, 0, 255)
    rgb[4:] = (255, 255, 0)
    palette = Image.fromarray(rgb, "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    loaded = load_image_file(_png(palette), color=True).image
    np.testing.assert_allclose(loaded, rgb.transpose(2, 0, 1) / 255, atol=1e-6)

    out = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(out, format="JPEG", quality=95)
    jpeg = load_image_file(out.getvalue()).image
    assert jpeg.shape == (16, 16) and abs(float(jpeg.mean()) - 200 / 255) < 0.02


def test_huge_image_is_downscaled_with_a_note():
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 1200), dtype=np.uint8))
    image, note = load_image_file(_png(big), max_side=512)
    assert image.shape == (256, 512)
    assert "downscaled from 1200x600 to 512x256" in note
    assert 0 <= image.min() and image.max() <= 1


def test_bad_image_files(tmp_path, monkeypatch):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ImageError, match="not an image") as err:
        load_image_file(text)
    assert str(text) in str(err.value) and isinstance(err.value, ValueError)

    with pytest.raises(ImageError, match="no such file"):
        load_image_file(tmp_path / "missing.png")

    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for fmt in ("PNG", "JPEG"):
        out = io.BytesIO()
        Image.fromarray(noise).save(out, format=fmt)
        blob = out.getvalue()
        with pytest.raises(ImageError, match="corrupt or truncated"):
            load_image_file(blob[: len(blob) // 2])

    import PIL.Image

    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is now a "decompression bomb"
    out = io.BytesIO()
    Image.fromarray(noise).save(out, format="PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image_file(out.getvalue())


# --- command line ----------------------------------------------------------------------------------------


def _run(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "EXPLORER_DATA"}
    env.update(env_extra or {})
    return subprocess.run([*args], check=False, capture_output=True, text=True, env=env, timeout=120)


def test_cli_help():
    result = _run(sys.executable, "-m", "explorer", "--help")
    assert result.returncode == 0 and "data" in result.stdout
    for sub in (["data", "--help"], ["data", "info", "--help"], ["data", "download", "--help"]):
        result = _run(sys.executable, "-m", "explorer", *sub)
        assert result.returncode == 0 and "usage: explorer data" in result.stdout
    script = Path(sys.executable).parent / "explorer"
    if script.exists():  # the console script of the installed package
        assert _run(str(script), "--help").returncode == 0


def test_cli_missing_dataset_exits_2_with_a_message(tmp_path):
    result = _run(sys.executable, "-m", "explorer", "data", "info")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "EXPLORER_DATA" in result.stderr and "explorer data download" in result.stderr
    result = _run(sys.executable, "-m", "explorer", "data", "info", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere does not exist" in result.stderr
    result = _run(sys.executable, "-m", "explorer", "data", "download")
    assert result.returncode == 2 and "--data" in result.stderr


def test_cli_info_on_a_fake_dataset(fake_archive_dir, tmp_path):
    store = {"EXPLORER_STORE": str(tmp_path / "cli-store")}
    result = _run(
        sys.executable, "-m", "explorer", "--data", str(fake_archive_dir), "data", "info", env_extra=store
    )
    assert result.returncode == 0, result.stderr
    assert "cifar-10-python.tar.gz" in result.stdout
    assert f"train: {5 * PER_BATCH} images (3x32x32 uint8)" in result.stdout
    assert "airplane 10, automobile 10" in result.stdout  # labels cycle through the 10 classes
    assert f"test: {PER_BATCH} images" in result.stdout


def test_importing_the_computation_side_stays_light():
    code = (
        "import sys, explorer, explorer.config, explorer.data, explorer.cli;"
        "heavy = [m for m in ('panel', 'holoviews', 'bokeh', 'torch') if m in sys.modules];"
        "print(heavy)"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_cached_test_split_follows_the_configured_location(fake_archive_dir, tmp_path, monkeypatch):
    from explorer.data import sources

    monkeypatch.setenv("EXPLORER_DATA", str(fake_archive_dir))
    assert len(sources.cifar_test().labels) == PER_BATCH
    assert sources.cifar_test() is sources.cifar_test()  # read once per location
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError):  # not the copy read from the first location
        sources.cifar_test()
