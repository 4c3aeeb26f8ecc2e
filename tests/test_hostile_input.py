"""Hostile input, in process: uploads to the Scattering page, a dataset location that is not CIFAR-10 (or a
trap: symbolic link loops, pipes, pickles that run code, archives that expand without bound), URL arguments,
and where the server listens. Every case must end in one clear message naming the problem and its fix, leave
the session usable, write nothing outside the store and unpickle nothing but plain arrays.
The served versions are in tests/browser/test_hostile.py."""
from __future__ import annotations

import html
import io
import os
import pickle
import re
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import serve_cli
from explorer.data import (
    DatasetFormatError,
    DatasetNotFoundError,
    ImageError,
    find_cifar10,
    load_cifar10,
    sources,
)
from explorer.data import cifar10 as cifar_module
from explorer.data.images import MAX_DECODED_BYTES, MAX_UPLOAD_BYTES

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# --- helpers -------------------------------------------------------------------------------------------


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _encoded(fmt: str, size=(48, 40), mode="RGB") -> bytes:
    out = io.BytesIO()
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).convert(mode).save(out, format=fmt)
    return out.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height RGB pixels (its data stream is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh working directory and store; returns (cwd, store) and checks afterwards that nothing appeared
    in the working directory."""
    cwd, store = tmp_path / "deep" / "er" / "cwd", tmp_path / "store"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("EXPLORER_STORE", str(store))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    yield cwd, store
    assert _files(cwd) == set(), "something was written into the working directory"


@pytest.fixture(scope="module")
def scattering_page():
    from explorer.app import build_app

    return build_app("scattering").page


# --- uploads -------------------------------------------------------------------------------------------

NOT_IMAGES = {
    "text": b"hello, this is not an image\n" * 10,
    "html": b"<html><script>alert(1)</script></html>",
    "svg": b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'><rect width='9' height='9'/></svg>",
    "pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\n",
    "zip": b"PK\x03\x04" + bytes(100),
    "elf": b"\x7fELF\x02\x01\x01" + bytes(200),
    "pickle": pickle.dumps({"a": 1}),
    "png signature only": b"\x89PNG\r\n\x1a\n",
    "png signature and zeros": b"\x89PNG\r\n\x1a\n" + bytes(64),
    "random bytes": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
    "gif (a real image, not PNG or JPEG)": _encoded("GIF", mode="P"),
    "bmp (a real image, not PNG or JPEG)": _encoded("BMP"),
    "tiff (a real image, not PNG or JPEG)": _encoded("TIFF"),
    "webp (a real image, not PNG or JPEG)": _encoded("WEBP"),
}


def _truncations() -> dict[str, bytes]:
    out = {}
    for fmt in ("PNG", "JPEG"):
        blob = _encoded(fmt, size=(96, 80))
        for fraction in (0.1, 0.5, 0.9, 0.99):
            out[f"{fmt} cut at {fraction:.0%}"] = blob[: int(len(blob) * fraction)]
    return out


TRUNCATED = _truncations()

# What an upload is refused for, and the words that say so.
REFUSALS = {
    **{f"not an image: {k}": (v, "is not an image") for k, v in NOT_IMAGES.items()},
    **{f"truncated: {k}": (v, "corrupt or truncated|is not an image") for k, v in TRUNCATED.items()},
    "empty": (b"", "empty"),
    "bomb: 50000x50000 declared": (_png_declaring(50_000, 50_000), "too large to decode safely.*2,500,000,000 pix"),
    "bomb: 100000x100000 declared": (_png_declaring(100_000, 100_000), "too large to decode safely"),
    "bomb: 10000x10000 declared (under Pillow's own limit x 2)": (_png_declaring(10_000, 10_000),
                                                                 "too large to decode safely.*10000×10000"),
    "bomb: 9000x9000 RGB declared": (_png_declaring(9000, 9000), "9000×9000 pixels, 324 MB once decoded"),
    "huge side: 100000x1": (_png(np.zeros((1, 100_000), np.uint8)), "is 100000×1 pixels, too thin"),
    "huge side: 3x100000": (_png(np.zeros((100_000, 3), np.uint8)), "is 3×100000 pixels, too thin"),
    "tiny: 5x5": (_png(np.zeros((5, 5), np.uint8)), "only 5×5 pixels; use at least 8×8"),
    "over the size limit": (b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES), "limit is 10 MB"),
}

HOSTILE_NAMES = ["../../evil.png", "../../../../../../tmp/evil.png", "/tmp/evil-absolute.png", "..\\..\\evil.png",
                 "sub/dir/evil.png", "evil\x00.png", "C:\\Windows\\evil.png", "~/evil.png", "evil.png/..", ".",
                 "..", "", "x" * 5000 + ".png", "<img src=x onerror=alert(1)>.png", "évil 😈.png"]


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_upload_is_refused_with_a_message_and_the_page_keeps_working(case, scattering_page, sandbox):
    data, words = REFUSALS[case]
    page = scattering_page
    page.source = "sample image"
    before = page.image.copy()
    start = time.perf_counter()
    page.upload.value = {"photo.png": data}
    elapsed = time.perf_counter() - start
    assert page.source == "uploaded file"
    assert page.alert.visible and page.alert.object.startswith("Cannot use this image:"), page.alert.object
    assert re.search(words, page.alert.object), page.alert.object
    assert "Traceback" not in page.alert.object and len(page.alert.object) < 800
    assert np.array_equal(page.image, before)  # the previous image stays
    assert elapsed < 5, f"{case} took {elapsed:.1f} s to refuse"
    page.source = "synthetic pattern"  # still working: another source clears the error
    assert not page.alert.visible and page.image is not None


def test_a_bomb_is_refused_before_its_pixels_are_decoded(monkeypatch):
    from PIL import ImageFile

    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size))
    for width, height in [(50_000, 50_000), (10_000, 10_000), (9000, 9000), (8200, 8200)]:
        with pytest.raises(ImageError, match="refused before decoding"):
            sources.uploaded(_png_declaring(width, height), 64)
    assert decoded == []
    assert 8200 * 8200 * 4 > MAX_DECODED_BYTES > 8000 * 8000 * 4


def test_a_real_bomb_costs_nothing(sandbox):
    """A real 8200×8200 RGB PNG of zeros (a few hundred kB, 269 MB decoded) is refused in milliseconds."""
    out = io.BytesIO()
    Image.new("RGB", (8200, 8200)).save(out, format="PNG", compress_level=1)
    assert len(out.getvalue()) < 2_000_000
    start = time.perf_counter()
    with pytest.raises(ImageError, match="8200×8200 pixels, 269 MB once decoded"):
        sources.uploaded(out.getvalue(), 64)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("name, data, ok", [
    ("photo.jpg", _encoded("PNG"), True),  # a PNG named .jpg: the content decides
    ("photo.png", _encoded("JPEG"), True),
    ("photo.txt", _encoded("PNG"), True),
    ("photo", _encoded("JPEG"), True),
    ("photo.png", _encoded("GIF", mode="P"), False),
    ("photo.jpeg", b"#!/bin/sh\nrm -rf /\n", False),
    ("photo.png.exe", b"MZ" + bytes(100), False),
])
def test_wrong_extensions_the_content_decides(name, data, ok, scattering_page, sandbox):
    page = scattering_page
    page.source = "sample image"
    page.upload.value = {name: data}
    if ok:
        assert not page.alert.visible, page.alert.object
        assert page.image.shape == (page.size, page.size) and "resized" in page.note.object
    else:
        assert page.alert.visible and "is not an image in PNG or JPEG format" in page.alert.object


def test_text_upload_decoded_by_panel_is_refused(scattering_page, sandbox):
    """Panel's FileDropper hands a file declared text/* over as a str, not bytes."""
    page = scattering_page
    page.upload.value = {"notes.png": "I am text, decoded by Panel"}
    assert page.alert.visible and "is not an image" in page.alert.object


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_upload_names_are_never_used_as_paths(name, scattering_page, sandbox, tmp_path):
    cwd, store = sandbox
    temp = Path(tempfile.gettempdir())
    watched = [cwd, store, tmp_path]
    before = {folder: _files(folder) for folder in watched}
    temp_before = set(os.listdir(temp))
    clean = name.replace("\x00", "")
    targets = [base / clean for base in (cwd, store, temp, Path.home()) if clean and len(clean) < 255]
    existed = {t: t.exists() for t in targets}
    page = scattering_page
    for data in (_encoded("PNG"), b"not an image"):
        page.source = "sample image"
        page.upload.value = {name: data}
        assert page.source == "uploaded file"
    assert page.alert.visible  # the last one was not an image: refused, the name not repeated
    assert "evil" not in page.alert.object and "<img" not in page.alert.object
    page.upload.value = {name: _encoded("JPEG")}
    assert not page.alert.visible
    for folder in watched:
        assert _files(folder) == before[folder], f"an upload named {name!r} wrote into {folder}"
    assert {n for n in set(os.listdir(temp)) - temp_before if "evil" in n} == set()
    assert {t: t.exists() for t in targets} == existed  # e.g. cwd/../../evil.png, /tmp/evil-absolute.png


def test_session_survives_a_hundred_hostile_uploads(scattering_page, sandbox):
    page = scattering_page
    cases = list(REFUSALS.values())
    for i in range(100):
        data, _ = cases[i % len(cases)]
        page.upload.value = {HOSTILE_NAMES[i % len(HOSTILE_NAMES)]: data}
        assert page.alert.visible
    page.upload.value = {"fine.png": _encoded("PNG", size=(70, 70))}
    assert not page.alert.visible
    page.J = 2
    assert page.result is not None and page.result.J == 2
    page.J = 3


# --- a dataset location that is not CIFAR-10 --------------------------------------------------------------


def _fake_cifar_files(per_batch: int = 10) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for name in [*cifar_module.BATCHES["train"], *cifar_module.BATCHES["test"]]:
        files[name] = pickle.dumps({"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                                    "labels": [int(i) % 10 for i in range(per_batch)]}, protocol=2)
    files["batches.meta"] = pickle.dumps({"label_names": CLASSES}, protocol=2)
    return files


def _tar_gz(path: Path, members: dict[str, bytes], prefix: str = "cifar-10-batches-py/") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


class _WritesMarker:
    """Unpickled by a plain pickle.load, this creates the marker file."""

    def __init__(self, marker: Path, how: str):
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "os.system":
            return (os.system, (f"touch {self.marker}",))
        if self.how == "exec":
            return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))
        if self.how == "eval":
            return (eval, (f"open({str(self.marker)!r}, 'w')",))
        if self.how == "subprocess":
            return (subprocess.Popen, (["touch", str(self.marker)],))
        if self.how == "Path.touch":
            return (Path.touch, (self.marker,))
        if self.how == "np.save":  # a gadget inside an allowed module's neighbour
            return (np.save, (str(self.marker), np.zeros(1)))
        raise ValueError(self.how)


PAYLOADS = ["os.system", "exec", "eval", "subprocess", "Path.touch", "np.save"]


@pytest.mark.parametrize("how", PAYLOADS)
@pytest.mark.parametrize("where", ["data", "labels", "top", "meta"])
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(how, where, tmp_path, sandbox):
    marker = tmp_path / "marker"
    payload = _WritesMarker(marker, how)
    files = _fake_cifar_files()
    if where == "meta":
        files["batches.meta"] = pickle.dumps({"label_names": payload}, protocol=2)
    elif where == "top":
        files["test_batch"] = pickle.dumps(payload, protocol=2)
    else:
        batch = {"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 10}
        batch[where] = payload
        files["test_batch"] = pickle.dumps(batch, protocol=2)
    archive = _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", files)
    with pytest.raises(DatasetFormatError, match=r"not a valid CIFAR-10 pickle \(UnpicklingError: unexpected object"):
        load_cifar10("test", data=archive.parent)
    assert not marker.exists() and not Path(str(marker) + ".npy").exists()
    # The same file through a plain unpickler does run the payload: the test's payloads are real.
    if how in ("Path.touch", "eval"):
        blob = files["batches.meta"] if where == "meta" else files["test_batch"]
        pickle.loads(blob)
        assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_the_restricted_unpickler_reads_plain_batches_in_every_protocol(protocol, tmp_path, sandbox):
    files = _fake_cifar_files()
    files = {n: pickle.dumps(pickle.loads(b), protocol=protocol) for n, b in files.items()}
    _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", files)
    test = load_cifar10("test", data=tmp_path / "data", cache=False)
    assert test.images.shape == (10, 3, 32, 32) and test.classes == tuple(CLASSES)


class _HugeArray:
    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        rebuild = np.ndarray(0).__reduce__()[0]
        if self.how == "reconstruct":  # 9 GB of uint8 in a 200-byte pickle, touched later by concatenate
            return (rebuild, (np.ndarray, (3_000_000, 3072), np.dtype("u1")))
        return (np.ndarray, ((3_000_000, 3072), np.dtype("u1")))  # the class called directly


@pytest.mark.parametrize("how", ["reconstruct", "ndarray"])
def test_a_pickle_cannot_allocate_more_than_its_own_size(how, tmp_path, sandbox):
    files = _fake_cifar_files()
    files["test_batch"] = pickle.dumps({"data": _HugeArray(how), "labels": [0] * 10}, protocol=2)
    _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", files)
    words = "declared in a" if how == "reconstruct" else "called directly"
    with pytest.raises(DatasetFormatError, match=words):
        load_cifar10("test", data=tmp_path / "data")


def test_a_batch_larger_than_any_cifar_batch_is_not_read(tmp_path, sandbox):
    """A tar.gz of zeros declaring an 80 MB batch (80 kB on disk) is refused before it is decompressed."""
    files = _fake_cifar_files()
    files["test_batch"] = bytes(80 * 2**20)
    archive = _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", files)
    assert archive.stat().st_size < 2**20
    with pytest.raises(DatasetFormatError, match="holds 80 MiB, more than any CIFAR-10 batch file.*not read"):
        load_cifar10("test", data=archive)
    folder = tmp_path / "folder" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    with pytest.raises(DatasetFormatError, match="holds 80 MiB"):
        load_cifar10("test", data=folder)


def test_an_archive_of_many_members_stops_early(tmp_path, sandbox):
    members = {f"junk{i}": b"" for i in range(cifar_module.MAX_MEMBERS + 5)}
    _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", {**members, **_fake_cifar_files()})
    with pytest.raises(DatasetFormatError, match="not the CIFAR-10 python archive: more than 1000 members"):
        load_cifar10("test", data=tmp_path / "data")


def _non_archives(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, blob in {"text": b"hello, not an archive\n" * 50, "empty": b"", "png": _encoded("PNG"),
                       "random": np.random.default_rng(2).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
                       "gzip of text": zlib.compress(b"x" * 1000), "zip": b"PK\x05\x06" + bytes(18)}.items():
        path = tmp_path / "nonarchive" / name / "cifar-10-python.tar.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(blob)
        out[name] = path
    return out


def test_non_archives_are_named(tmp_path, sandbox):
    for name, path in _non_archives(tmp_path).items():
        for location in (path, path.parent):
            with pytest.raises(DatasetFormatError, match="is not a readable tar archive|lacks batches.meta") as err:
                load_cifar10("test", data=location)
            message = str(err.value)
            assert str(path) in message and "CIFAR-10" in message, (name, message)
            assert "method gz" not in message  # not tarfile's list of every method it tried
            assert "\n" not in message


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999])
def test_truncated_archive_is_named(fraction, tmp_path, sandbox):
    whole = _tar_gz(tmp_path / "whole" / "cifar-10-python.tar.gz", _fake_cifar_files(per_batch=200))
    blob = whole.read_bytes()
    cut = tmp_path / "cut" / "cifar-10-python.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(blob[: int(len(blob) * fraction)])
    for split in ("train", "test"):
        with pytest.raises(DatasetFormatError, match="truncated"):
            load_cifar10(split, data=cut.parent)


@pytest.mark.parametrize("members, words", [
    ({"readme.txt": b"hi"}, "lacks batches.meta, data_batch_1"),
    ({"batches.meta": pickle.dumps({"label_names": CLASSES})}, "lacks data_batch_1"),
    ({"../../evil": b"x", "/tmp/evil-abs": b"x", "test_batch": b"garbage"}, "lacks batches.meta"),
])
def test_archive_with_wrong_members(members, words, tmp_path, sandbox):
    _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", members, prefix="")
    with pytest.raises(DatasetFormatError, match=words):
        load_cifar10("train", data=tmp_path / "data")
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-abs").exists()


def test_archive_members_with_path_separators_are_read_never_extracted(tmp_path, sandbox):
    _tar_gz(tmp_path / "data" / "cifar-10-python.tar.gz", _fake_cifar_files(), prefix="../../../../")
    before = _files(tmp_path)
    assert len(load_cifar10("test", data=tmp_path / "data").labels) == 10  # the base names match
    assert {p for p in _files(tmp_path) - before if not p.startswith("store")} == set()


def _traps(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    base = tmp_path / "traps"
    base.mkdir()
    (base / "self").symlink_to("self")
    (base / "a").symlink_to("b")
    (base / "b").symlink_to("a")
    (base / "dangling").symlink_to(base / "nowhere")
    for name, target in (("archive-loop", "cifar-10-python.tar.gz"), ("folder-loop", "cifar-10-batches-py")):
        (base / name).mkdir()
        (base / name / target).symlink_to(target)
    (base / "inner-loop").mkdir()
    (base / "inner-loop" / "x").symlink_to("../inner-loop/x")
    traps = {
        "self loop": (base / "self", "symbolic link loop"),
        "two-link loop": (base / "a", "symbolic link loop"),
        "loop through it": (base / "self" / "deeper", "symbolic link loop"),
        "dangling link": (base / "dangling", "symbolic link to nothing"),
        "archive name is a loop": (base / "archive-loop", "symbolic link loop"),
        "folder name is a loop": (base / "folder-loop", "symbolic link loop"),
        "folder with a loop inside, no CIFAR": (base / "inner-loop", "No CIFAR-10 in"),
        "missing": (base / "missing", "does not exist"),
        "file name too long": (base / ("x" * 5000), "cannot be read"),
        "empty folder": (tmp_path / "empty", "No CIFAR-10 in"),
        "folder of other files": (ROOT / "explorer", "No CIFAR-10 in"),
    }
    (tmp_path / "empty").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(base / "fifo")
        (base / "fifo-archive").mkdir()
        os.mkfifo(base / "fifo-archive" / "cifar-10-python.tar.gz")
        traps["a pipe"] = (base / "fifo", "neither a file nor a folder")
        traps["archive name is a pipe"] = (base / "fifo-archive", "neither a file nor a folder")
    if Path("/dev/zero").exists():
        traps["a device"] = (Path("/dev/zero"), "neither a file nor a folder")
    return traps


def test_traps_in_the_dataset_location(tmp_path, sandbox):
    for name, (location, words) in _traps(tmp_path).items():
        for call, arguments in ((find_cifar10, (location,)), (load_cifar10, ("test", location))):
            with pytest.raises(DatasetNotFoundError, match=words) as err:
                call(*arguments)
            message = str(err.value)
            assert "EXPLORER_DATA" in message and "--data" in message, (name, message)
            assert len(message) < 600, (name, len(message))


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EXPLORER_DATA"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_cli_says_one_clear_line(tmp_path, sandbox):
    traps = _traps(tmp_path)
    non_archive = _non_archives(tmp_path)["text"]
    cases = {name: traps[name] for name in ("self loop", "two-link loop", "archive name is a loop",
                                             "dangling link", "file name too long", "empty folder")}
    cases["not an archive"] = (non_archive, "is not a readable tar archive")
    if "a pipe" in traps:
        cases["a pipe"] = traps["a pipe"]
    for name, (location, words) in cases.items():
        result = _cli("data", "info", "--data", str(location), env_extra={"EXPLORER_STORE": str(tmp_path / "s")})
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("explorer: error:"), (name, result.stderr)
        assert re.search(words, lines[0]) and "Traceback" not in result.stderr, (name, lines[0])
        assert len(lines[0]) < 600


def test_pages_keep_working_when_the_dataset_location_is_a_trap(tmp_path, monkeypatch, sandbox):
    from explorer.app import build_app

    traps = _traps(tmp_path)
    for location in (traps["self loop"][0], _non_archives(tmp_path)["text"]):
        monkeypatch.setenv("EXPLORER_DATA", str(location))  # read afresh: the split is cached per location
        page = build_app("scattering").page
        assert page.image is not None and not page.alert.visible
        if "CIFAR-10 test image" in page.param.source.objects:  # offered for a file; its loading says why not
            page.source = "CIFAR-10 test image"
            assert page.alert.visible and "not a readable tar archive" in page.alert.object
            page.source = "sample image"
            assert not page.alert.visible
        else:
            assert location.is_symlink()


# --- URL arguments -------------------------------------------------------------------------------------

HOSTILE_SLUGS = ["../../etc", "../../../../etc/passwd", "/etc/passwd", "<script>alert(1)</script>",
                 "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>', "javascript:alert(1)",
                 "[click](javascript:alert(1))", "$$\\href{javascript:alert(1)}{x}$$", "**bold** _it_ `code`",
                 "a" * 100_000, "\x00", "\ufffd\ufffd", "\u202etxt.exe", "wavelets\x00", "home/../runs",
                 "%2e%2e%2f", "{{7*7}}", "${7*7}", "__import__('os')", "PAGES", "explorer.pages.runs:RunsPage"]


def _alert_html(template) -> str:
    import bokeh.document

    alert = template.main[0]
    model = alert.get_root(bokeh.document.Document())
    return html.unescape(model.text)


@pytest.mark.parametrize("slug", HOSTILE_SLUGS, ids=lambda s: repr(s[:30]))
def test_unknown_page_is_named_safely(slug):
    from explorer.app import MAX_SHOWN_SLUG, build_app

    template = build_app(slug)
    assert type(template.page).__name__ == "HomePage"
    text = template.main[0].object
    assert text.startswith("There is no page `") and "showing the home page" in text and "`wavelets`" in text
    shown = text.split("`")[1]
    assert len(shown) <= MAX_SHOWN_SLUG + 1 and re.fullmatch(r"[\w .\-/?…]*", shown), shown
    rendered = _alert_html(template)  # the HTML the browser receives
    for bad in ("<script", "<img", "<svg", "<a ", "$$", "<strong>", "<em>"):
        assert bad not in rendered, (bad, rendered)


@pytest.mark.parametrize("values, expected", [
    ({"page": [b"wavelets"], "foo": [b"bar"]}, "WaveletsPage"),
    ({"page": [b"wavelets", b"runs"]}, "WaveletsPage"),  # repeated: the first wins
    ({"page": [b"Scattering "]}, "ScatteringPage"),
    ({"page": [b"\xff\xfe"]}, "HomePage"),  # not UTF-8
    ({"page": [b""]}, "HomePage"),
    ({"page": []}, "HomePage"),
    ({"theme": [b"\xff"], "page": [b"\xc3("]}, "HomePage"),
    ({"x" * 1000: [b"y" * 100_000] * 50}, "HomePage"),
    ({}, "HomePage"),
])
def test_url_arguments(values, expected, monkeypatch):
    import panel as pn
    from bokeh.document import Document

    from explorer import app

    args = {k: list(v) for k, v in values.items()}
    monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: args))
    monkeypatch.setattr(type(pn.state), "curdoc", property(lambda self: Document()))
    template = app.build_app()
    assert type(template.page).__name__ == expected
    for vals in args.values():  # every argument is valid UTF-8 afterwards (Panel decodes ?theme= strictly)
        for v in vals:
            v.decode("utf-8")


def test_only_the_page_argument_is_read():
    """No other URL argument reaches the app's code (Panel itself reads ?theme=, checked in the browser)."""
    sources_read = []
    for path in (ROOT / "explorer").rglob("*.py"):
        text = path.read_text()
        if "session_args" in text or "pn.state.location" in text or "query_params" in text:
            sources_read.append(path.relative_to(ROOT).as_posix())
    assert sources_read == ["explorer/app.py"], sources_read
    app_text = (ROOT / "explorer" / "app.py").read_text()
    assert re.findall(r'session_args\.get\("(\w+)"', app_text) == ["page"]


# --- where the server listens -----------------------------------------------------------------------------


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.0.2.2", False), ("fd00::2", False),
    ("example.org", False), ("::ffff:127.0.0.1", False), ("fe80::1%eth0", False)])
def test_loopback_addresses(address, loopback):
    assert serve_cli.is_loopback(address) is loopback


def test_panel_serve_defaults_to_every_interface():
    """Why `explorer serve` exists: Bokeh's --address defaults to None, which Tornado binds on every
    interface."""
    from bokeh.command.subcommands.serve import base_serve_args

    assert dict(base_serve_args)["--address"].default is None
    assert serve_cli.addresses_from_argv(["panel", "serve", "explorer/app.py"]) == ["0.0.0.0"]
    assert serve_cli.addresses_from_argv(["panel", "serve", "app.py", "--address", "127.0.0.1"]) == ["127.0.0.1"]
    assert serve_cli.addresses_from_argv(["panel", "serve", "app.py", "--address=::1"]) == ["::1"]
    assert serve_cli.addresses_from_argv(["panel", "serve", "app.py", "--unix-socket", "/tmp/s"]) == []
    assert serve_cli.addresses_from_argv(["pytest"]) is None


def test_listening_addresses_from_proc():
    if not Path("/proc/self/net/tcp").exists():
        pytest.skip("no /proc here: the app falls back on the panel serve command line")
    assert serve_cli.listening_addresses() == []
    with socket.socket() as a, socket.socket(socket.AF_INET6) as b, socket.socket() as c:
        a.bind(("127.0.0.1", 0))
        a.listen()
        b.bind(("::1", 0))
        b.listen()
        c.bind(("0.0.0.0", 0))
        c.listen()
        assert serve_cli.listening_addresses() == ["0.0.0.0", "127.0.0.1", "::1"]
        assert serve_cli.listening_addresses(os.getpid()) == ["0.0.0.0", "127.0.0.1", "::1"]
    assert serve_cli.listening_addresses() == []
    assert serve_cli.listening_addresses(2**22 + 12345) is None  # no such process


def test_exposure_warning_rules():
    warn = serve_cli.exposure_warning
    assert warn(["127.0.0.1"], authenticated=False) is None
    assert warn(["127.0.0.1", "::1"], authenticated=False) is None
    assert warn(["0.0.0.0", "::"], authenticated=True) is None
    message = warn(["0.0.0.0"], authenticated=False, port=5006, origins=[])
    assert "all interfaces" in message and "without authentication" in message
    assert "--basic-auth" in message and "--cookie-secret" in message and "--oauth-provider" in message
    assert "127.0.0.1" in message and "Serving safely" in message and "--allow-websocket-origin" in message
    assert "192.0.2.2" in warn(["127.0.0.1", "192.0.2.2"], authenticated=False)


def test_explorer_serve_command_line():
    args = serve_cli_args([])
    cmd = serve_cli.panel_command(args)
    assert cmd[1:5] == ["-m", "panel", "serve", str(ROOT / "explorer" / "app.py")]
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5006"
    assert "--allow-websocket-origin" not in cmd  # panel serve's own default lets 127.0.0.1 and localhost in
    args = serve_cli_args(["--address", "0.0.0.0", "--port", "8000", "--allow-websocket-origin", "lab:8000",
                           "--allow-websocket-origin", "lab.example.org:8000", "--basic-auth", "pw",
                           "--cookie-secret", "s3", "--show", "--", "--num-threads", "4", "--liveness"])
    cmd = serve_cli.panel_command(args)
    joined = " ".join(cmd)
    for part in ("--address 0.0.0.0", "--port 8000", "--allow-websocket-origin lab:8000",
                 "--allow-websocket-origin lab.example.org:8000", "--basic-auth pw", "--cookie-secret s3",
                 "--show", "--num-threads 4 --liveness"):
        assert part in joined, (part, joined)
    result = _cli("serve", "--dry-run")
    assert result.returncode == 0 and "--address 127.0.0.1" in result.stdout
    result = _cli("serve", "--port", "70000")
    assert result.returncode == 2 and "--port must be between" in result.stderr


def serve_cli_args(argv: list[str]):
    from explorer.cli import build_parser

    return build_parser().parse_args(["serve", *argv])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _non_loopback_ips() -> list[str]:
    psutil = pytest.importorskip("psutil")
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            usable = a.family in (socket.AF_INET, socket.AF_INET6) and not a.address.startswith("fe80")
            if usable and not serve_cli.is_loopback(a.address):
                out.append(a.address)
    return out


def _wait_for(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.mark.slow
def test_explorer_serve_listens_on_loopback_only(tmp_path):
    psutil = pytest.importorskip("psutil")
    port = _free_port()
    env = {**os.environ, "EXPLORER_STORE": str(tmp_path / "store")}
    env.pop("EXPLORER_DATA", None)
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--port", str(port), "--", "--liveness"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/liveness", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app?page=home", timeout=60) as r:
            assert r.status == 200  # a session: the app has run, and checked where it listens
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and {a.port for a in listening} == {port}
        assert all(serve_cli.is_loopback(a.ip) for a in listening), listening
        if Path("/proc/self/net/tcp").exists():  # what the app's own check reads agrees with psutil
            assert serve_cli.listening_addresses(proc.pid) == sorted({a.ip for a in listening})
        for ip in _non_loopback_ips():  # the machine's own network addresses do not answer
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            with socket.socket(family) as s:
                s.settimeout(2)
                assert s.connect_ex((ip, port)) != 0, f"{ip}:{port} accepted a connection"
    finally:
        proc.terminate()
        try:
            output = proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
    assert "serving on http://127.0.0.1:" in output
    assert "without authentication" not in output, output[-2000:]


_IN_NAMESPACE = r"""
import subprocess, sys, time, urllib.parse, urllib.request
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
cmd = [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--port", "5006", "--liveness",
       *sys.argv[1:]]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    for _ in range(600):
        try:
            urllib.request.urlopen("http://127.0.0.1:5006/liveness", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    if "--basic-auth" in sys.argv:  # log in, so that a session starts and the app runs
        form = urllib.parse.urlencode({"username": "user", "password": "not-a-real-password"}).encode()
        opener.open("http://127.0.0.1:5006/login", data=form, timeout=60).read()
    for _ in range(2):
        page = opener.open("http://127.0.0.1:5006/app?page=home", timeout=120).read().decode()
        assert "Bokeh" in page and "/login" not in opener.open("http://127.0.0.1:5006/app").geturl(), page[:300]
    time.sleep(0.5)
finally:
    proc.terminate()
    print(proc.communicate(timeout=30)[0])
"""


def _serve_in_a_private_network(tmp_path: Path, *panel_args: str) -> str:
    """`panel serve` in a network namespace of its own (unshare -rn: only a loopback device), so that a server
    on 0.0.0.0 is reachable by nothing outside; its log."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare or ip missing: cannot isolate a server listening on every interface")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no network namespaces here: {probe.stderr.decode()[:200]}")
    env = {**os.environ, "EXPLORER_STORE": str(tmp_path / "store")}
    env.pop("EXPLORER_DATA", None)
    result = subprocess.run(["unshare", "-rn", sys.executable, "-c", _IN_NAMESPACE, *panel_args], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_the_app_warns_in_the_log_when_served_on_every_interface_without_login(tmp_path):
    log = _serve_in_a_private_network(tmp_path)  # plain `panel serve`, no --address: every interface
    warnings = [line for line in log.splitlines() if "without authentication" in line]
    assert len(warnings) == 1, log[-3000:]  # once per server process, not per session
    assert "all interfaces" in warnings[0] and "Serving safely" in warnings[0]
    log = _serve_in_a_private_network(tmp_path, "--address", "0.0.0.0", "--basic-auth", "not-a-real-password",
                                      "--cookie-secret", "test-secret")
    assert "without authentication" not in log, log[-3000:]
    log = _serve_in_a_private_network(tmp_path, "--address", "127.0.0.1")
    assert "without authentication" not in log, log[-3000:]
