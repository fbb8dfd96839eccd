"""Words ↔ indices for captions, in CS231n's convention.

A caption is stored as word indices `<START> w1 … wn <END> <NULL> …` (N, T): `<NULL>` (index 0) pads
it to the array's width and is masked out of the loss; `<UNK>` stands for words outside the vocabulary.
The digit-strings task's vocabulary is these four tokens and the ten digit names.
"""

from __future__ import annotations

import numpy as np

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL = (NULL, START, END, UNK)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_WORDS = {word: index for index, word in enumerate(SPECIAL + DIGIT_NAMES)}  # <NULL> 0 … nine 13


def digit_index(digit: int) -> int:
    """The word index of digit 0–9 in `DIGIT_WORDS`."""
    return len(SPECIAL) + int(digit)


def encode_digits(digits, width: int) -> np.ndarray:
    """Digits (e.g. [7, 2, 9]) → (width,) indices `<START> seven two nine <END> <NULL> …`."""
    caption = np.full(width, DIGIT_WORDS[NULL], dtype=np.int64)
    words = [DIGIT_WORDS[START], *(digit_index(d) for d in digits), DIGIT_WORDS[END]]
    caption[: len(words)] = words
    return caption


def words_of(indices, idx_to_word: dict[int, str] | list[str]) -> list[str]:
    """The words of one caption: `<START>` and `<NULL>` left out, stopping after the first `<END>` (not kept)."""
    words = []
    for index in np.asarray(indices).tolist():
        word = idx_to_word[index]
        if word == END:
            break
        if word not in (NULL, START):
            words.append(word)
    return words


def decode_captions(captions, idx_to_word: dict[int, str] | list[str]) -> list[str] | str:
    """CS231n's `decode_captions`: (N, T) indices → N strings (one string for a (T,) caption)."""
    captions = np.asarray(captions)
    if captions.ndim == 1:
        return " ".join(words_of(captions, idx_to_word))
    return [" ".join(words_of(row, idx_to_word)) for row in captions]
