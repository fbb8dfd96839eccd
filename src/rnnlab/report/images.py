"""Your own digit pictures → 28×28 uint8 arrays made the way MNIST was made.

MNIST's recipe (LeCun et al.): the digit is white on black; it is cropped to its bounding box, scaled
(antialiased, keeping its aspect ratio) to fit a 20×20 box, and pasted into a 28×28 field so that its
centre of mass lies at the field's centre. `load_digit` does exactly that for a PNG or JPEG file of
any size, with a light or a dark background (decided from the border pixels).

What is read, and how (everything else is refused with an `RnnlabError` saying what to do):

* formats: PNG and JPEG (including JPEG's MPO variant from cameras, whose first picture is the photo
  itself). Other formats are refused: convert the picture to PNG.
* animated or multi-page files (an animated PNG) are REFUSED: which frame is the digit is not ours to guess.
* 16-bit PNGs are read at full depth and scaled to 0–255.
* transparency (RGBA, LA, palettes with a transparent colour) is composited onto a plain background
  of the opposite brightness to the drawn (opaque) pixels: dark strokes on a transparent sheet go on
  white, light strokes on black; the usual background decision follows.
* CMYK JPEGs are converted to RGB, then (like every colour picture) to grayscale luminance.
* the EXIF orientation of phone photos is applied.
* empty files, files that are not images, truncated files, pictures with a zero dimension, pictures
  above `MAX_PIXELS` (checked from the header BEFORE decoding, so a decompression bomb never
  expands), and blank pictures (no digit to find) are refused.
* PIL's own warnings about a picture it can still read (a JPEG with corrupt EXIF data, say) are kept
  quiet: the picture is accepted and nothing extra is printed.

One implementation for every face: `load_digit(path)` (predict, report) and `digit_from_bytes(data)`
(an upload to `rnnlab serve`) go through the same `_read` → `_decode` → `to_mnist`; `digit_from_pixels`
checks a 28×28 array that is already in MNIST's form (the web API's JSON input).
"""

from __future__ import annotations

import io
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rnnlab.errors import RnnlabError

MAX_PIXELS = 40_000_000  # a 40-megapixel photo; PIL's own bomb limit is ~89 M
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG (MPO)"}
BOX, FIELD = 20, 28
MIN_CONTRAST = 0.1  # brightest minus background, as a fraction of full scale: below it there is no digit


class ImageRefused(RnnlabError):
    """The file cannot be used as a digit picture; the message says why and what to do."""


def _refuse(path: str | Path, why: str) -> ImageRefused:
    return ImageRefused(f"{path}: {why}")


def read_grayscale(path: str | Path) -> np.ndarray:
    """The picture in `path` as float64 luminance in [0, 1], (H, W), after the checks in the module doc."""
    path = Path(path)
    if not path.exists():
        raise _refuse(path, "no such file; give the path of a PNG or JPEG picture")
    if not path.is_file():
        raise _refuse(path, "not a file; give the path of a PNG or JPEG picture")
    if path.stat().st_size == 0:
        raise _refuse(path, "the file is empty (0 bytes); give a PNG or JPEG picture")
    return _read(path, path)


def grayscale_from_bytes(data: bytes, name: str = "the picture") -> np.ndarray:
    """The picture held in `data` (a PNG or JPEG file's bytes) as float64 luminance in [0, 1], (H, W).

    The same checks as `read_grayscale`; `name` stands for the picture in the error messages.
    """
    if not data:
        raise _refuse(name, "the file is empty (0 bytes); give a PNG or JPEG picture")
    return _read(io.BytesIO(data), name)


# PIL reports what it can still read (corrupt EXIF data, say) with `warnings.warn`; those must not print.
# `warnings.catch_warnings` swaps the process-wide filter list, so threads that each entered and left it
# (the web server decodes uploads in worker threads) could restore each other's filters and leave them
# wrong for good. So the first reader in installs the quiet filters and the last one out restores the
# old ones; the lock guards only that switch, so decoding itself runs in parallel.
_QUIET_LOCK = threading.Lock()
_quiet_readers = 0
_quiet_catcher: warnings.catch_warnings | None = None


@contextmanager
def _quiet_pil():
    """PIL's warnings stay quiet (a picture it can read is accepted without extra lines on stderr), except
    its decompression-bomb warning, which becomes an error and so a refusal."""
    global _quiet_readers, _quiet_catcher
    with _QUIET_LOCK:
        if _quiet_readers == 0:
            _quiet_catcher = warnings.catch_warnings()
            _quiet_catcher.__enter__()
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
        _quiet_readers += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_readers -= 1
            if _quiet_readers == 0:
                _quiet_catcher.__exit__(None, None, None)
                _quiet_catcher = None


def _read(source: str | Path | BinaryIO, name: str | Path) -> np.ndarray:
    """Open `source` (a path or a file object), check it from its header, then decode it: (H, W) in [0, 1]."""
    with _quiet_pil():
        try:
            with Image.open(source) as image:
                return _decode(name, image)
        except ImageRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse(name, f"the picture is too large to read safely (a decompression bomb?); "
                                f"give one under {MAX_PIXELS:,} pixels") from None
        except UnidentifiedImageError:
            raise _refuse(name, "not a picture that can be read (not a PNG or JPEG file); save it as PNG") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _refuse(name, f"the picture is damaged or truncated ({detail}); save it again as PNG") from None


def _decode(path: str | Path, image: Image.Image) -> np.ndarray:
    if image.format not in FORMATS:
        raise _refuse(path, f"{image.format or 'this'} pictures are not read, only PNG and JPEG; convert it to PNG")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise _refuse(path, f"the picture has no pixels ({width}×{height}); give a real picture")
    if width * height > MAX_PIXELS:
        raise _refuse(path, f"the picture is {width}×{height} = {width * height:,} pixels, more than the "
                            f"{MAX_PIXELS:,} read safely (a decompression bomb?); scale it down first")
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise _refuse(path, f"an animated or multi-page picture ({frames} frames) is refused: which frame holds "
                            "the digit is ambiguous; save the one frame you mean as a PNG")
    image.load()  # decodes; a truncated file fails here
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        return np.clip(values / top, 0.0, 1.0)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return np.clip(values, 0.0, 1.0)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("L", "1") and "transparency" in image.info:
        image = image.convert("LA")
    elif mode == "RGB" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode == "CMYK":
        image = image.convert("RGB")
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] == 255:
            # Opaque, as a web page's canvas is: read like RGB, skipping the float compositing (the page
            # sends one such PNG per stroke, and this path is most of the time it takes to read).
            return np.asarray(rgba.convert("L"), dtype=np.float64) / 255.0
        values = np.asarray(rgba, dtype=np.float64) / 255.0
        gray = values[..., :3] @ np.array([0.299, 0.587, 0.114])
        alpha = values[..., 3]
        return _composite(gray, alpha)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _composite(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Drawn pixels over a background opposite in brightness to them (white under dark strokes)."""
    if alpha.sum() <= 0:
        return np.zeros_like(gray)  # fully transparent: blank, refused later
    if alpha.min() >= 1.0:
        return gray
    drawn = float((gray * alpha).sum() / alpha.sum())
    background = 1.0 if drawn < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


def to_mnist(gray: np.ndarray, path: str | Path = "the picture") -> np.ndarray:
    """Luminance in [0, 1] (H, W) → MNIST-style uint8 (28, 28): white digit on black, cropped, scaled to
    fit 20×20 (antialiased, aspect kept), centre of mass at the centre of the 28×28 field."""
    gray = np.asarray(gray, dtype=np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    light = np.median(border) > 0.5  # a light background: the digit is dark on light → invert
    if light:
        border = 1.0 - border
    background = float(np.median(border))
    # The digit's brightest value per row and per column (inverted: 1 - the darkest). They give the
    # brightest value overall and the digit's bounding box exactly as the whole scaled picture would
    # (scaling is monotone, so the maximum of the scaled values is the scaled maximum), and the
    # element-wise work below is done on the cropped digit only.
    if light:
        row_top, column_top = 1.0 - gray.min(axis=1), 1.0 - gray.min(axis=0)
    else:
        row_top, column_top = gray.max(axis=1), gray.max(axis=0)
    top = float(row_top.max())
    if top - background < MIN_CONTRAST:
        raise _blank(path)
    rows = np.flatnonzero((row_top - background) / (top - background) > 0.2)
    cols = np.flatnonzero((column_top - background) / (top - background) > 0.2)
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if light:
        crop = 1.0 - crop
    digit = np.clip((crop - background) / (top - background), 0.0, 1.0)
    digit = np.where(digit > 0.05, digit, 0.0)
    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)
    total = small.sum()
    if total <= 0:
        raise ImageRefused(f"{path}: no digit found after scaling; give a picture of one handwritten digit")
    ys, xs = np.indices(small.shape)
    com_y, com_x = (ys * small).sum() / total, (xs * small).sum() / total
    centre = FIELD / 2  # MNIST puts the centre of mass at (14, 14) in pixel-index coordinates
    top_left_y = int(np.clip(round(centre - com_y), 0, FIELD - small.shape[0]))
    top_left_x = int(np.clip(round(centre - com_x), 0, FIELD - small.shape[1]))
    field = np.zeros((FIELD, FIELD))
    field[top_left_y:top_left_y + small.shape[0], top_left_x:top_left_x + small.shape[1]] = small
    return np.round(field * 255.0).astype(np.uint8)


def _blank(name: str | Path) -> ImageRefused:
    return ImageRefused(f"{name}: no digit found (the picture is blank or has no contrast); "
                        "give a picture of one handwritten digit")


def load_digit(path: str | Path) -> np.ndarray:
    """A PNG/JPEG file → (28, 28) uint8 in MNIST's format (see the module doc for what is refused)."""
    return to_mnist(read_grayscale(path), path)


def digit_from_bytes(data: bytes, name: str = "the picture") -> np.ndarray:
    """A PNG/JPEG file's bytes (an upload) → (28, 28) uint8 in MNIST's format, exactly as `load_digit`."""
    return to_mnist(grayscale_from_bytes(data, name), name)


def digit_from_pixels(pixels, name: str = "pixels") -> np.ndarray:
    """A 28×28 nested list (or array) of numbers 0–255, already in MNIST's form (white digit on black,
    centred), → (28, 28) uint8, unchanged but for rounding. Refused: another shape, a value that is not a
    number in 0–255, and a blank image (less contrast than `to_mnist` asks of a picture)."""
    if isinstance(pixels, np.ndarray):
        values = pixels
    else:
        if not isinstance(pixels, (list, tuple)) or not all(isinstance(row, (list, tuple)) for row in pixels):
            raise ImageRefused(f"{name}: give a list of {FIELD} rows, each a list of {FIELD} numbers from 0 to 255")
        if len(pixels) != FIELD or any(len(row) != FIELD for row in pixels):
            lengths = sorted({len(row) for row in pixels})
            raise ImageRefused(f"{name}: the image is {len(pixels)} rows of {'/'.join(map(str, lengths)) or 0} values, "
                               f"not {FIELD}×{FIELD}; give {FIELD} rows of {FIELD} numbers from 0 to 255")
        if not all(type(v) in (int, float) for row in pixels for v in row):  # bool is an int: refused too
            raise ImageRefused(f"{name}: every value must be a number from 0 to 255 (no strings, booleans or nulls)")
        try:
            values = np.array(pixels, dtype=np.float64)
        except OverflowError:  # an integer beyond any float
            raise ImageRefused(f"{name}: every value must be a number from 0 to 255") from None
    if values.shape != (FIELD, FIELD):
        raise ImageRefused(f"{name}: the image has shape {values.shape}, not ({FIELD}, {FIELD})")
    if not np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
        raise ImageRefused(f"{name}: every value must be a number from 0 to 255, not {values.dtype}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise ImageRefused(f"{name}: every value must be a number from 0 to 255, found "
                           f"{values[~np.isfinite(values) | (values < 0) | (values > 255)].flat[0]:g}")
    if values.max() - values.min() < MIN_CONTRAST * 255:
        raise _blank(name)
    return np.rint(values).astype(np.uint8)
