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
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rnnlab.errors import RnnlabError

MAX_PIXELS = 40_000_000  # a 40-megapixel photo; PIL's own bomb limit is ~89 M
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG (MPO)"}
BOX, FIELD = 20, 28


class ImageRefused(RnnlabError):
    """The file cannot be used as a digit picture; the message says why and what to do."""


def _refuse(path: Path, why: str) -> ImageRefused:
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
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                return _decode(path, image)
        except ImageRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse(path, f"the picture is too large to read safely (a decompression bomb?); "
                                f"give one under {MAX_PIXELS:,} pixels") from None
        except UnidentifiedImageError:
            raise _refuse(path, "not a picture that can be read (not a PNG or JPEG file); save it as PNG") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _refuse(path, f"the picture is damaged or truncated ({detail}); save it again as PNG") from None


def _decode(path: Path, image: Image.Image) -> np.ndarray:
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
    if np.median(border) > 0.5:  # a light background: the digit is dark on light → invert
        gray = 1.0 - gray
        border = 1.0 - border
    background = float(np.median(border))
    top = float(gray.max())
    if top - background < 0.1:
        raise ImageRefused(f"{path}: no digit found (the picture is blank or has no contrast); "
                           "give a picture of one handwritten digit")
    digit = np.clip((gray - background) / (top - background), 0.0, 1.0)
    rows = np.nonzero((digit > 0.2).any(axis=1))[0]
    cols = np.nonzero((digit > 0.2).any(axis=0))[0]
    digit = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
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


def load_digit(path: str | Path) -> np.ndarray:
    """A PNG/JPEG file → (28, 28) uint8 in MNIST's format (see the module doc for what is refused)."""
    return to_mnist(read_grayscale(path), path)
