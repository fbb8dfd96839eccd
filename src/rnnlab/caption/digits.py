"""The "digit strings" captioning task, made offline from MNIST and in memory.

Each picture is a fixed canvas, 28 rows × 112 columns, of four 28-column slots; 1 to 4 MNIST digits
stand side by side in consecutive slots, and the caption is the digits as words, left to right:
`<START> seven two nine <END>`. How a picture is made:

* the number of digits is uniform in 1–4 and the digits are drawn uniformly from the split's images;
* they fill the slots from the left, one digit per slot;
* each digit's 28×28 MNIST field is shifted left or right by up to 2 columns (uniform) inside its slot,
  so that neither the positions nor the gaps are fixed; overlapping margins are merged (maximum);
* pixels stay MNIST's uint8, white ink on black.

Why slots, and not free positions: the encoder reads the picture row by row as the lab's LSTM reads a
digit, one slot at a time (`rnnlab.caption.model`), and so meets each digit where MNIST put it, give
or take the jitter; it learns the task in minutes on a CPU. (An LSTM reading whole 112-pixel rows of
freely placed digits had to learn every digit at every column: far slower; see docs/captioning.md.)
Strings start in the first slot, as writing starts at the margin. A user's picture is cut into its
digits, and each is made the MNIST way into its slot (`rnnlab.caption.sample`).

Training pictures use MNIST's training digits, test pictures its test digits: a test picture shows only
digits the model never saw. Everything is drawn from a NumPy generator seeded by the caller, so a
picture is a function of (split, seed, …): training batches are made afresh for every step from
(seed, epoch, step), and the test set is the same 1,000 pictures for every run with the same test seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.caption.vocab import DIGIT_WORDS, END, NULL, START, digit_index

HEIGHT, WIDTH = 28, 112
MAX_DIGITS = 4
SLOT = 28    # columns per digit slot: an MNIST field
JITTER = 2   # a digit's field moves up to this many columns left or right in its slot
CAPTION_WIDTH = MAX_DIGITS + 2  # <START>, up to four digits, <END>
TEST_PICTURES = 1000


@dataclass
class DigitPictures:
    """Pictures and their captions.

    images (N, 28, 112) uint8, white on black; captions (N, 6) int64 word indices (`DIGIT_WORDS`),
    `<START> d… <END> <NULL>…`; digits (N, 4) int64, the digits shown, -1 past the string's length;
    lengths (N,) int64, 1 to 4.
    """

    images: np.ndarray
    captions: np.ndarray
    digits: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


class DigitSource:
    """The MNIST digits of one split, ready to be composed into pictures.

    images (M, 28, 28) uint8 and labels (M,) of one MNIST split (a torch tensor or NumPy array).
    """

    def __init__(self, images, labels):
        self.images = np.ascontiguousarray(np.asarray(images, dtype=np.uint8))
        self.labels = np.asarray(labels, dtype=np.int64)

    def compose(self, n: int, rng: np.random.Generator) -> DigitPictures:
        """`n` new pictures drawn with `rng` (see the module doc for how)."""
        lengths = rng.integers(1, MAX_DIGITS + 1, size=n)
        chosen = rng.integers(len(self.images), size=(n, MAX_DIGITS))
        shifts = rng.integers(-JITTER, JITTER + 1, size=(n, MAX_DIGITS))
        used = np.arange(MAX_DIGITS)[None, :] < lengths[:, None]          # (n, 4): k-th digit of the string?
        # A padded canvas, so a shifted field never falls off the edge; the margins are cut off at the end.
        canvas = np.zeros((n, HEIGHT, WIDTH + 2 * JITTER), dtype=np.uint8)
        for i, k in zip(*np.nonzero(used)):
            left = JITTER + SLOT * k + shifts[i, k]
            region = canvas[i, :, left:left + SLOT]
            np.maximum(region, self.images[chosen[i, k]], out=region)
        digits = np.where(used, self.labels[chosen], -1)
        return DigitPictures(canvas[:, :, JITTER:JITTER + WIDTH].copy(), captions_of(digits), digits, lengths)


def captions_of(digits: np.ndarray) -> np.ndarray:
    """(N, 4) digits, -1 past each string's end → (N, 6) captions `<START> d… <END> <NULL>…`."""
    n = len(digits)
    captions = np.full((n, CAPTION_WIDTH), DIGIT_WORDS[NULL], dtype=np.int64)
    captions[:, 0] = DIGIT_WORDS[START]
    used = digits >= 0
    captions[:, 1:1 + MAX_DIGITS] = np.where(used, digit_index(0) + digits, DIGIT_WORDS[NULL])
    captions[np.arange(n), 1 + used.sum(axis=1)] = DIGIT_WORDS[END]
    return captions


def train_batch(source: DigitSource, n: int, seed: int, epoch: int, step: int) -> DigitPictures:
    """The training pictures of one step: the same for the same (seed, epoch, step), so a resumed run
    sees exactly the batches it would have seen."""
    return source.compose(n, np.random.default_rng([seed, 1, epoch, step]))


def held_out_pictures(source: DigitSource, n: int = TEST_PICTURES, seed: int = 0) -> DigitPictures:
    """The fixed test set: `n` pictures of the test split's digits, a function of `seed` alone."""
    return source.compose(n, np.random.default_rng([seed, 2]))


def picture_inputs(images) -> torch.Tensor:
    """uint8 pictures (N, 28, 112) → float32 (N, 28, 112) in [-1, 1]: the lab's normalisation (mean 0.5,
    std 0.5), one row of 112 pixels per time step."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    return x.div_(255.0).sub_(0.5).div_(0.5)


class DigitTask:
    """Digit strings as a captioning task: fresh training batches, a fixed test set, the vocabulary.

    The same interface as `rnnlab.caption.coco.CocoTask`: `train_batch(batch_size, epoch, step)` →
    (inputs, captions); `test_inputs`, `test_captions` (N, 6), `test_references` (one word list per
    picture), `test_lengths` (digits per picture); `word_to_idx`, `idx_to_word`, `max_length`, `source`.
    `feature_dim` is None: the inputs are pictures, read by the captioner's own encoder.
    """

    feature_dim = None
    max_length = MAX_DIGITS + 1  # up to four digits and <END>
    slots, slot_width = MAX_DIGITS, SLOT

    def __init__(self, dataset, seed: int, test_seed: int = 0, test_size: int = TEST_PICTURES):
        """`dataset`: MNIST as `rnnlab.data.load_splits` returns it."""
        self.word_to_idx = dict(DIGIT_WORDS)
        self.idx_to_word = list(DIGIT_WORDS)
        self.source = f"digit strings (1-{MAX_DIGITS} digits on {HEIGHT}x{WIDTH}) from {dataset.source}"
        self.seed = seed
        self.train_source = DigitSource(dataset.train.images, dataset.train.labels)
        test = held_out_pictures(DigitSource(dataset.test.images, dataset.test.labels), test_size, test_seed)
        self.test_inputs, self.test_captions, self.test_lengths = test.images, test.captions, test.lengths
        self.test_references = [[[self.idx_to_word[w] for w in row[1:1 + n]]] for row, n in
                                zip(test.captions.tolist(), test.lengths.tolist())]

    def train_batch(self, batch_size: int, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        batch = train_batch(self.train_source, batch_size, self.seed, epoch, step)
        return batch.images, batch.captions
