"""CS231n's COCO captioning files (assignment 3): HDF5 features and captions, a JSON vocabulary.

The folder, as CS231n's `get_datasets.sh` leaves it (https://cs231n.stanford.edu/coco_captioning.zip, about
1 GB, unzipped):

    coco2014_captions.h5       train_captions (N, 17) int, train_image_idxs (N,) int,
                               val_captions (M, 17) int, val_image_idxs (M,) int
    train2014_vgg16_fc7_pca.h5 features (images, 512) float (VGG-16 fc7, PCA to 512);
    val2014_vgg16_fc7_pca.h5   the same for the validation images
                               (train2014_vgg16_fc7.h5 / val2014_vgg16_fc7.h5: the 4,096-wide originals)
    coco2014_vocab.json        {"idx_to_word": [...], "word_to_idx": {...}}, with <NULL> <START> <END> <UNK>
    train2014_urls.txt, val2014_urls.txt   one image URL per line (optional here: only for looking at images)

`load_coco_data` reads it like CS231n's `coco_utils.load_coco_data` (same keys); `CocoTask` serves it to
the captioner: training batches of (features, caption), and a test set of validation images, each with
all its captions as references (for BLEU).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnlab.caption.vocab import words_of
from rnnlab.errors import DataError

CAPTIONS, VOCAB = "coco2014_captions.h5", "coco2014_vocab.json"
FEATURES = {True: ("train2014_vgg16_fc7_pca.h5", "val2014_vgg16_fc7_pca.h5"),
            False: ("train2014_vgg16_fc7.h5", "val2014_vgg16_fc7.h5")}
WHERE = ("CS231n's assignment-3 COCO captioning files come from https://cs231n.stanford.edu/coco_captioning.zip "
         "(about 1 GB): unzip it and give its coco_captioning folder as --data-dir")


def load_coco_data(base_dir, max_train: int | None = None, pca_features: bool = True, seed: int = 0) -> dict:
    """CS231n's `load_coco_data`: every array and the vocabulary, keyed as the course keys them.

    A missing or unreadable file is a `DataError` naming it (and where the files come from).
    """
    import h5py

    base = Path(base_dir)
    train_file, val_file = FEATURES[pca_features]
    missing = [name for name in (CAPTIONS, train_file, val_file, VOCAB) if not (base / name).is_file()]
    if missing:
        raise DataError(f"{base} lacks {', '.join(missing)}; {WHERE}")
    data: dict = {}
    try:
        with h5py.File(base / CAPTIONS, "r") as f:
            for key in ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs"):
                data[key] = np.asarray(f[key])
        for split, name in (("train", train_file), ("val", val_file)):
            with h5py.File(base / name, "r") as f:
                data[f"{split}_features"] = np.asarray(f["features"], dtype=np.float32)
    except (OSError, KeyError) as exc:
        raise DataError(f"{base}: a COCO file is not what CS231n's files hold ({exc}); {WHERE}") from None
    try:
        vocab = json.loads((base / VOCAB).read_text())
        data["idx_to_word"], data["word_to_idx"] = list(vocab["idx_to_word"]), dict(vocab["word_to_idx"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{base / VOCAB}: not CS231n's vocabulary ({exc}); {WHERE}") from None
    for split in ("train", "val"):
        for name in (f"{split}_urls.txt",):
            path = base / name
            data[name.removesuffix(".txt")] = np.asarray(path.read_text().split()) if path.is_file() else None
    _check(data, base)
    if max_train is not None:  # CS231n subsamples captions at random; here from a seeded generator
        keep = np.random.default_rng(seed).integers(len(data["train_captions"]), size=max_train)
        data["train_captions"] = data["train_captions"][keep]
        data["train_image_idxs"] = data["train_image_idxs"][keep]
    return data


def _check(data: dict, base: Path) -> None:
    """Shapes and index ranges agree (a truncated or mixed-up folder says so here, not as an IndexError later)."""
    words = len(data["idx_to_word"])
    for split in ("train", "val"):
        captions, idxs, features = data[f"{split}_captions"], data[f"{split}_image_idxs"], data[f"{split}_features"]
        problem = None
        if captions.ndim != 2 or len(captions) != len(idxs):
            problem = f"{split}_captions {captions.shape} and {split}_image_idxs {idxs.shape} do not pair up"
        elif features.ndim != 2 or (len(idxs) and not 0 <= idxs.min() <= idxs.max() < len(features)):
            problem = f"{split}_image_idxs point outside the {len(features)} {split} feature rows"
        elif captions.size and not 0 <= captions.min() <= captions.max() < words:
            problem = f"{split}_captions hold word indices outside the {words}-word vocabulary"
        if problem:
            raise DataError(f"{base}: {problem}; {WHERE}")
    for token in ("<NULL>", "<START>", "<END>"):
        if token not in data["word_to_idx"]:
            raise DataError(f"{base / VOCAB}: the vocabulary has no {token}; {WHERE}")


class CocoTask:
    """The COCO files as a captioning task: (features, caption) training pairs, a validation test set."""

    def __init__(self, data_dir, seed: int, test_size: int):
        data = load_coco_data(data_dir)
        self.data = data
        self.word_to_idx, self.idx_to_word = data["word_to_idx"], data["idx_to_word"]
        self.source = f"CS231n's COCO captioning files in {data_dir}"
        self.seed = seed
        self.max_length = data["train_captions"].shape[1] - 1
        self.feature_dim = data["train_features"].shape[1]
        # Test set: the first `test_size` validation images (in caption order), each with all its captions.
        images = list(dict.fromkeys(data["val_image_idxs"].tolist()))[:test_size]
        first = {}
        for row, image in enumerate(data["val_image_idxs"].tolist()):
            first.setdefault(image, row)
        self.test_inputs = data["val_features"][images]
        self.test_captions = data["val_captions"][[first[i] for i in images]]
        by_image: dict[int, list] = {i: [] for i in images}
        for caption, image in zip(data["val_captions"], data["val_image_idxs"].tolist()):
            if image in by_image:
                by_image[image].append(words_of(caption, self.idx_to_word))
        self.test_references = [by_image[i] for i in images]
        self.test_lengths = np.array([len(words_of(c, self.idx_to_word)) for c in self.test_captions])

    def train_batch(self, batch_size: int, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(features (B, D) float32, captions (B, 17)) of one step, a function of (seed, epoch, step)."""
        n = len(self.data["train_captions"])
        order = np.random.default_rng([self.seed, 3, epoch]).permutation(n)
        rows = order[(step * batch_size) % n:][:batch_size]
        return self.data["train_features"][self.data["train_image_idxs"][rows]], self.data["train_captions"][rows]
