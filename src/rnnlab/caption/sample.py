"""`rnnlab caption sample RUN IMAGE...`: caption your own picture of a few digits written side by side.

A picture (PNG or JPEG, any size, light or dark background) is read with `rnnlab.report.images` (the same
checks as `rnnlab predict`: formats, EXIF rotation, transparency, size limits, blank pictures) and made
the way the training pictures were made:

* white ink on black (a light background is inverted), background at 0, full contrast;
* cut into its digits at the columns without ink (so leave a little space between the digits), ink
  specks narrower than a tenth of the writing's height dropped; 1 to 4 digits;
* each digit made exactly as `rnnlab predict` makes one (`rnnlab.report.images.to_mnist`: cropped,
  scaled to fit 20×20, centre of mass at the centre of a 28×28 field), and put into the next slot of
  the 28×112 canvas from the left, as the training strings are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from rnnlab.caption.digits import HEIGHT, MAX_DIGITS, SLOT, WIDTH
from rnnlab.errors import RnnlabError

MIN_CONTRAST = 0.1  # as rnnlab.report.images: brightest minus background, below it there is no writing
MIN_WIDTH = 0.1     # a run of ink columns narrower than this fraction of the writing's height is a speck


def split_digits(gray: np.ndarray, name: str | Path = "the picture") -> list[np.ndarray]:
    """Luminance in [0, 1] (H, W) → each digit's part of the picture, white on black, left to right."""
    from rnnlab.report.images import ImageRefused

    gray = np.asarray(gray, dtype=np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark writing on light paper → white on black, as MNIST
        gray, border = 1.0 - gray, 1.0 - border
    background, top = float(np.median(border)), float(gray.max())
    if top - background < MIN_CONTRAST:
        raise ImageRefused(f"{name}: no writing found (the picture is blank or has no contrast); "
                           "give a picture of a few digits written side by side")
    scaled = np.clip((gray - background) / (top - background), 0.0, 1.0)
    ink = scaled > 0.2
    rows = np.flatnonzero(ink.any(axis=1))
    height = rows[-1] - rows[0] + 1
    columns = ink.any(axis=0).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], columns, [0]])))  # starts and ends of ink runs
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= MIN_WIDTH * height]
    if not runs:
        raise ImageRefused(f"{name}: no digit found; give a picture of a few digits written side by side")
    if len(runs) > MAX_DIGITS:
        raise ImageRefused(f"{name}: {len(runs)} separate marks found, more than the {MAX_DIGITS} digits the "
                           f"captioner reads; give 1 to {MAX_DIGITS} digits, with space between them only")
    # Each digit keeps the writing's full height (so a short digit stays short) and a black margin, so that
    # to_mnist sees a dark border (it decides the background from the border).
    margin = max(2, height // 10)
    return [np.pad(scaled[rows[0]:rows[-1] + 1, a:b], margin) for a, b in runs]


def to_digit_string(gray: np.ndarray, name: str | Path = "the picture") -> np.ndarray:
    """Luminance in [0, 1] (H, W) → uint8 (28, 112) in the training pictures' form (see the module doc)."""
    from rnnlab.report.images import to_mnist

    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for k, digit in enumerate(split_digits(gray, name)):
        canvas[:, SLOT * k:SLOT * (k + 1)] = to_mnist(digit, name)
    return canvas


def load_digit_string(path: str | Path) -> np.ndarray:
    """A PNG/JPEG file → uint8 (28, 112) digit-string picture, as the captioner was trained on."""
    from rnnlab.report.images import read_grayscale

    return to_digit_string(read_grayscale(path), path)


def sample_command(run: str, images: list[str], beam_size: int = 1, out: str | None = None,
                   log: Callable[[str], None] = print) -> int:
    """Print `file: caption` for each picture, written by the captioner of `run` (greedy, or beam search)."""
    from rnnlab.caption.metrics import caption_strings
    from rnnlab.caption.train import load_captioner

    if not images:
        raise RnnlabError("no pictures given: name one or more PNG or JPEG files")
    if beam_size < 1:
        raise RnnlabError(f"--beam-size must be 1 (greedy) or more, got {beam_size}")
    if out is not None:
        from rnnlab.report.plots import png_destination

        out = png_destination(out, "--out")
    trainer, captioned = load_captioner(run, need_data=False, log=log)
    if captioned.config.data != "digits":
        raise RnnlabError(f"{run} captions {captioned.config.data} feature vectors, not pictures; "
                          "give a digit-strings run")
    pictures = np.stack([load_digit_string(image) for image in images])  # every picture checked first
    captions = caption_strings(trainer.caption(pictures, beam_size=beam_size), captioned.task.idx_to_word)
    for image, caption in zip(images, captions):
        log(f"{image}: {caption}")
    if out is not None:
        from rnnlab.caption.figures import save_captioned_pictures

        log(f"wrote {save_captioned_pictures(pictures, captions, None, out)}")
    return 0
