"""`report/images.py` as the web server uses it: pictures from bytes read exactly as from files (one
implementation for predict, report and serve), PIL's warnings kept quiet (a JPEG with corrupt EXIF is
accepted and prints nothing), safely from many threads at once, and 28×28 pixel arrays checked."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from serve_helpers import canvas_png, mnist_digits, paper_png

from rnnlab.report.images import ImageRefused, digit_from_bytes, digit_from_pixels, load_digit


def corrupt_exif_jpeg(digit: np.ndarray) -> bytes:
    """A JPEG of the digit whose EXIF directory claims 5 entries but holds one and 10 bytes (PIL warns 'Corrupt EXIF')."""
    exif = (b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00"
            b"\x12\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00" + b"\x99" * 10)
    buffer = io.BytesIO()
    Image.fromarray(255 - digit).resize((200, 200)).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist_digits(mnist, 6)


def test_bytes_and_files_read_the_same(digits, tmp_path):
    for k, (digit, _) in enumerate(digits):
        for name, data in (("paper.png", paper_png(digit)), ("canvas.png", canvas_png(digit)),
                           ("exif.jpg", corrupt_exif_jpeg(digit))):
            path = tmp_path / f"{k}-{name}"
            path.write_bytes(data)
            assert (digit_from_bytes(data) == load_digit(path)).all()


def test_a_jpeg_with_corrupt_exif_is_accepted_quietly(digits, tmp_path):
    path = tmp_path / "exif.jpg"
    path.write_bytes(corrupt_exif_jpeg(digits[0][0]))
    with warnings.catch_warnings():  # PIL does warn about this file when read without our guard
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="EXIF"):
            from PIL import ImageOps

            ImageOps.exif_transpose(Image.open(path))
    before = list(warnings.filters)
    run = subprocess.run([sys.executable, "-W", "default", "-c",
                          f"from rnnlab.report.images import load_digit; load_digit({str(path)!r}); print('ok')"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok" and run.stderr == "", run.stderr
    assert warnings.filters == before


def test_many_threads_decode_at_once_and_leave_the_warning_filters_as_they_were(digits):
    before = list(warnings.filters)
    pictures = [corrupt_exif_jpeg(d) for d, _ in digits] + [canvas_png(d) for d, _ in digits]
    expected = [digit_from_bytes(p) for p in pictures]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            got = list(pool.map(digit_from_bytes, pictures))
            assert all((a == b).all() for a, b in zip(got, expected))
    assert warnings.filters == before
    with warnings.catch_warnings(record=True) as caught:  # and warnings elsewhere still show
        warnings.simplefilter("default")
        warnings.warn("still here", UserWarning)
    assert len(caught) == 1


def test_refusals_name_the_upload(digits):
    with pytest.raises(ImageRefused, match="^the upload: the file is empty"):
        digit_from_bytes(b"", "the upload")
    with pytest.raises(ImageRefused, match="^the upload: not a picture"):
        digit_from_bytes(b"GIF? no", "the upload")


def test_pixels(digits):
    digit = digits[0][0]
    assert (digit_from_pixels(digit.tolist()) == digit).all()
    assert (digit_from_pixels(digit.astype(float).tolist()) == digit).all()
    assert (digit_from_pixels(digit) == digit).all()
    for bad, words in (([[0] * 28] * 27, "not 28×28"), ("x", "28 rows"), ([[None] * 28] * 28, "a number"),
                       ([[256] * 28] * 28, "0 to 255"), ([[float("inf")] * 28] * 28, "0 to 255"),
                       ([[9] * 28] * 28, "no digit"), (np.zeros((28, 29)), "shape"),
                       ([[10**400] * 28] * 28, "0 to 255"), (np.full((28, 28), "7"), "0 to 255")):
        with pytest.raises(ImageRefused, match=words):
            digit_from_pixels(bad)


def plain_recipe(gray: np.ndarray) -> np.ndarray:
    """MNIST's recipe written plainly, on the whole picture (as `to_mnist` was before it worked on the crop)."""
    gray = np.asarray(gray, dtype=np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray, border = 1.0 - gray, 1.0 - border
    background, top = float(np.median(border)), float(gray.max())
    digit = np.clip((gray - background) / (top - background), 0.0, 1.0)
    rows, cols = np.nonzero((digit > 0.2).any(axis=1))[0], np.nonzero((digit > 0.2).any(axis=0))[0]
    digit = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    digit = np.where(digit > 0.05, digit, 0.0)
    scale = 20 / max(digit.shape)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    small = np.clip(np.asarray(Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS),
                               dtype=np.float64), 0.0, 1.0)
    ys, xs = np.indices(small.shape)
    com_y, com_x = (ys * small).sum() / small.sum(), (xs * small).sum() / small.sum()
    y0 = int(np.clip(round(14 - com_y), 0, 28 - small.shape[0]))
    x0 = int(np.clip(round(14 - com_x), 0, 28 - small.shape[1]))
    field = np.zeros((28, 28))
    field[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return np.round(field * 255.0).astype(np.uint8)


def test_to_mnist_on_the_crop_equals_the_plain_recipe(mnist):
    """`to_mnist` finds the box from row and column extremes and works on the crop: the very same bytes as
    the plain recipe, on 1,200 pictures (any size, dark or light background, low contrast, noise)."""
    from rnnlab.report.images import to_mnist

    rng = np.random.default_rng(0)
    for digit in mnist.test.images[:300].numpy():
        for variant in range(4):
            size = (int(rng.integers(40, 400)), int(rng.integers(40, 400)))
            gray = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BICUBIC), dtype=np.float64) / 255
            if variant == 1:
                gray = 1 - gray
            elif variant == 2:
                gray = np.clip(gray * 0.6 + 0.2 + rng.normal(0, 0.03, gray.shape), 0, 1)
            elif variant == 3:
                gray = np.clip(0.9 - gray * 0.7 + rng.normal(0, 0.05, gray.shape), 0, 1)
            assert (to_mnist(gray) == plain_recipe(gray)).all()
