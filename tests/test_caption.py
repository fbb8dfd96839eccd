"""Captioning: digit strings, the PyTorch captioner (same model as CS231n's), decoding, metrics, training that
learns, resume, the COCO loader, `rnnlab caption train|sample|report`.

The long runs (the acceptance figures) are `benchmarks/caption_results.py`; here every training is short
but still has to learn: a module fixture trains one small captioner (a few hundred steps) that the
sample, report and NumPy tests share.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnlab.caption.config import CaptionConfig
from rnnlab.caption.decode import beam_decode, greedy_decode
from rnnlab.caption.digits import (HEIGHT, MAX_DIGITS, SLOT, WIDTH, DigitSource, DigitTask, captions_of,
                                   held_out_pictures, train_batch)
from rnnlab.caption.metrics import per_word, score_captions
from rnnlab.caption.model import ImageCaptioner, caption_loss
from rnnlab.caption.vocab import DIGIT_WORDS, decode_captions, encode_digits
from rnnlab.errors import RnnlabError

pytestmark = pytest.mark.usefixtures("one_thread")

# A small captioner that learns the task to well above chance in a few hundred steps on one thread.
SMALL = {"epochs": 1, "epoch_size": 16000, "batch_size": 32, "test_size": 300, "hidden_size": 64,
         "encoder_hidden": 64, "wordvec_dim": 32, "lr": 5e-3, "log_every": 100}


def cli(capsys, *argv) -> tuple[int, str, str]:
    """`rnnlab caption ...` as the CLI runs it (the lead wires it into rnnlab.cli): exit code, stdout, stderr."""
    from rnnlab.caption.cli import add_caption_commands, run_caption
    from rnnlab.cli import Parser

    parser = Parser(prog="rnnlab")
    add_caption_commands(parser.add_subparsers(dest="command", required=True, parser_class=Parser), Parser)
    try:
        args = parser.parse_args([str(a) for a in argv])
        code = run_caption(args, log=print)
    except SystemExit as exc:
        code = exc.code
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=__import__("sys").stderr)
        code = 2
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def task(mnist):
    return DigitTask(mnist, seed=0, test_seed=0, test_size=SMALL["test_size"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir, task, one_thread):
    """One small LSTM-decoder captioner trained through the CLI's function, shared by several tests."""
    from rnnlab.caption.train import train_caption

    run_dir = tmp_path_factory.mktemp("caption") / "lstm"
    return train_caption(CaptionConfig(data_dir=str(mnist_dir), **SMALL), run_dir, task=task, log=lambda m: None)


# ---------------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------------


def test_digit_strings_are_reproducible_and_match_their_captions(mnist):
    source = DigitSource(mnist.train.images[:500], mnist.train.labels[:500])
    a = train_batch(source, 64, seed=3, epoch=1, step=7)
    b = train_batch(source, 64, seed=3, epoch=1, step=7)
    c = train_batch(source, 64, seed=3, epoch=1, step=8)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (64, HEIGHT, WIDTH) and a.images.dtype == np.uint8
    assert set(a.lengths.tolist()) == set(range(1, MAX_DIGITS + 1))
    for image, digits, n, caption in zip(a.images, a.digits, a.lengths, a.captions):
        assert (digits[:n] >= 0).all() and (digits[n:] == -1).all()
        assert decode_captions(caption, list(DIGIT_WORDS)) == " ".join(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][d] for d in digits[:n])
        # Digits fill the slots from the left: ink in the first n slots, none in the others (jitter is 3 columns).
        slots_with_ink = [image[:, SLOT * k + 4:SLOT * (k + 1) - 4].any() for k in range(MAX_DIGITS)]
        assert slots_with_ink == [k < n for k in range(MAX_DIGITS)]


def test_test_pictures_use_only_test_digits_and_are_fixed():
    """Train digits drawn in grey 50 and test digits in grey 200 show which split each picture came from."""
    from rnnlab.data import Dataset, Split

    def split(value):
        images = torch.zeros(10, 28, 28, dtype=torch.uint8)
        images[:, 6:22, 8:20] = value
        return Split(images, torch.arange(10))

    task = DigitTask(Dataset("mnist", "fake", split(50), split(200)), seed=0, test_size=100)
    assert set(np.unique(task.test_inputs).tolist()) == {0, 200}
    assert set(np.unique(task.train_batch(100, 0, 0)[0]).tolist()) == {0, 50}
    again = DigitTask(Dataset("mnist", "fake", split(50), split(200)), seed=5, test_size=100)
    np.testing.assert_array_equal(task.test_inputs, again.test_inputs)  # the test set ignores the training seed
    source = DigitSource(split(200).images, split(200).labels)
    first, other = held_out_pictures(source, 50, seed=0), held_out_pictures(source, 50, seed=1)
    assert not np.array_equal(first.images, other.images)


def test_captions_encode_and_decode():
    assert encode_digits([7, 2, 9], 6).tolist() == [1, 11, 6, 13, 2, 0]
    assert captions_of(np.array([[7, 2, 9, -1]])).tolist() == [[1, 11, 6, 13, 2, 0]]
    assert decode_captions(np.array([[1, 11, 2, 0, 0, 0], [4, 5, 6, 7, 8, 2]]), list(DIGIT_WORDS)) == [
        "seven", "zero one two three four"]


# ---------------------------------------------------------------------------------------------------
# The PyTorch captioner is CS231n's CaptioningRNN
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", ["lstm", "scratch-lstm", "rnn"])
def test_torch_captioner_loss_equals_numpy_captioning_rnn(decoder):
    """The same weights in the NumPy model give the same loss: the torch captioner is CS231n's model."""
    from rnnlab.models.numpy_captioning import CaptioningRNN
    from rnnlab.models.scratch_lstm import torch_to_sheet_weights

    torch.manual_seed(0)
    D, W, H = 6, 5, 7
    model = ImageCaptioner(len(DIGIT_WORDS), decoder, W, H, slots=None, feature_dim=D).double()
    ref = CaptioningRNN(DIGIT_WORDS, D, W, H, cell_type="rnn" if decoder == "rnn" else "lstm", dtype=np.float64)
    p = {name: t.detach().numpy() for name, t in model.named_parameters()}
    ref.params.update(W_embed=p["embed.weight"], W_proj=p["proj.weight"].T, b_proj=p["proj.bias"],
                      W_vocab=p["vocab.weight"].T, b_vocab=p["vocab.bias"])
    if decoder == "lstm":
        Wx, Wh, b = torch_to_sheet_weights(model.decoder.weight_ih_l0, model.decoder.weight_hh_l0,
                                           model.decoder.bias_ih_l0 + model.decoder.bias_hh_l0)
    elif decoder == "scratch-lstm":
        layer = model.decoder.layers[0]
        Wx, Wh, b = layer.Wx, layer.Wh, layer.b
    else:
        Wx, Wh, b = model.decoder.weight_ih_l0.T, model.decoder.weight_hh_l0.T, \
            model.decoder.bias_ih_l0 + model.decoder.bias_hh_l0
    ref.params.update(Wx=Wx.detach().numpy(), Wh=Wh.detach().numpy(), b=b.detach().numpy())
    rng = np.random.default_rng(0)
    features = rng.standard_normal((4, D))
    captions = captions_of(np.array([[1, 2, -1, -1], [3, -1, -1, -1], [4, 5, 6, 7], [8, 9, 0, -1]]))
    c = torch.as_tensor(captions)
    with torch.no_grad():
        loss, _ = caption_loss(model(torch.as_tensor(features), c[:, :-1]), c[:, 1:])
    assert loss.item() == pytest.approx(ref.loss(features, captions)[0], rel=1e-10)


def test_beam_search_of_one_is_greedy_and_wider_beams_score_at_least_as_well():
    torch.manual_seed(1)
    model = ImageCaptioner(len(DIGIT_WORDS), "lstm", 8, 16, slots=None, feature_dim=5).eval()
    x = torch.randn(20, 5) * 3
    tokens = (DIGIT_WORDS["<START>"], DIGIT_WORDS["<END>"], DIGIT_WORDS["<NULL>"])
    greedy = greedy_decode(model, x, 5, *tokens)
    assert torch.equal(beam_decode(model, x, 5, *tokens, beam_size=1), greedy)
    beam = beam_decode(model, x, 5, *tokens, beam_size=4)

    def log_prob(captions):
        """Sum of log-probabilities of each caption's words up to its <END> (or its last word)."""
        words = torch.cat([torch.full((len(x), 1), tokens[0]), captions], dim=1)
        with torch.no_grad():
            scores = torch.log_softmax(model(x, words[:, :-1]), dim=2)
        picked = scores.gather(2, words[:, 1:, None])[..., 0]
        live = torch.cumprod(torch.cat([torch.ones(len(x), 1), (captions[:, :-1] != tokens[1]).float()], 1), 1)
        return (picked * live).sum(dim=1)

    assert (log_prob(beam) >= log_prob(greedy) - 1e-5).all()
    for row in beam.tolist():  # <NULL> only after <END>
        if tokens[1] in row:
            assert all(w == tokens[2] for w in row[row.index(tokens[1]) + 1:])


# ---------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------


def test_exact_match_per_word_and_bleu(task):
    truth = np.asarray(task.test_captions)[:, 1:]
    perfect = score_captions(truth, task)
    assert perfect["exact_match"] == 1.0 and perfect["per_word_accuracy"] == 1.0
    assert perfect["bleu4"] == pytest.approx(1.0)
    assert sum(v["pictures"] for v in perfect["by_length"].values()) == len(truth)
    # One extra digit instead of <END>: that position is wrong, the rest right.
    correct, counted = per_word(np.array([[4, 5, 6, 2, 0]]), np.array([[4, 5, 2, 0, 0]]), null=0)
    assert (correct.tolist(), counted.tolist()) == ([2], [3])
    wrong = truth.copy()
    wrong[:, 0] = np.where(wrong[:, 0] == 4, 5, 4)  # every first digit wrong
    scores = score_captions(wrong, task)
    assert scores["exact_match"] == 0.0 and 0.5 < scores["per_word_accuracy"] < 1.0 and scores["bleu4"] < 1.0


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------


def test_short_training_learns(trained):
    """A few hundred steps: well above chance (a model that ignores the picture scores about 10% per word)."""
    metrics = trained.metrics
    assert metrics["per_word_accuracy"] > 0.6, metrics
    assert metrics["exact_match"] > 0.2, metrics
    assert set(metrics["by_length"]) == {"1", "2", "3", "4"}
    for name in ("config.json", "metrics.json", "model.pt", "checkpoint.pt"):
        assert (trained.run_dir / name).is_file()
    saved = json.loads((trained.run_dir / "metrics.json").read_text())
    assert saved["exact_match"] == metrics["exact_match"] and saved["decoder"] == "lstm"


def test_killed_run_resumes_to_the_same_weights(tmp_path, mnist_dir, task):
    """A run that dies after a mid-epoch checkpoint, resumed, ends with the weights of a run never stopped."""
    from rnnlab.caption.train import train_caption

    settings = {**SMALL, "epochs": 2, "epoch_size": 320, "checkpoint_every": 4, "log_every": 1}
    whole = train_caption(CaptionConfig(data_dir=str(mnist_dir), **settings), tmp_path / "whole", task=task,
                          log=lambda m: None)

    class Died(Exception):
        pass

    def die_after_step_6_of_epoch_2(message):
        if "epoch 2 step 6/" in message:
            raise Died

    with pytest.raises(Died):
        train_caption(CaptionConfig(data_dir=str(mnist_dir), **settings), tmp_path / "killed", task=task,
                      log=die_after_step_6_of_epoch_2)
    lines = []
    resumed = train_caption(None, tmp_path / "killed", resume=True, task=task, log=lines.append)
    assert any("resuming at epoch 2, step 4" in line for line in lines)
    a, b = whole.trainer.model.state_dict(), resumed.trainer.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["exact_match"] == whole.metrics["exact_match"]
    assert [e["train_loss"] for e in resumed.metrics["epochs"]] == [e["train_loss"] for e in whole.metrics["epochs"]]


def test_numpy_captioning_rnn_learns_on_the_encoder_features(tmp_path, mnist_dir, task, trained):
    from rnnlab.caption.train import train_caption

    run = train_caption(CaptionConfig(data_dir=str(mnist_dir), backend="numpy", features_from=str(trained.run_dir),
                                      **{**SMALL, "epoch_size": 6400}), tmp_path / "numpy", task=task,
                        log=lambda m: None)
    assert run.metrics["backend"] == "numpy"
    assert run.metrics["per_word_accuracy"] > 0.5, run.metrics
    losses = [e["train_loss"] for e in run.metrics["epochs"]]
    assert losses[0] < 8.0


@pytest.mark.parametrize("decoder", ["rnn", "scratch-lstm"])
def test_other_decoders_train(tmp_path, mnist_dir, task, decoder):
    from rnnlab.caption.train import train_caption

    run = train_caption(CaptionConfig(data_dir=str(mnist_dir), decoder=decoder, **{**SMALL, "epoch_size": 1280}),
                        tmp_path / decoder, task=task, log=lambda m: None)
    first = run.metrics["epochs"][0]["train_loss"]
    assert np.isfinite(first) and run.metrics["decoder"] == decoder


# ---------------------------------------------------------------------------------------------------
# Your own picture: `rnnlab caption sample`
# ---------------------------------------------------------------------------------------------------


def canonical(digits: list[np.ndarray]) -> np.ndarray:
    """Digits' 28×28 fields in the first slots of a canvas, unshifted: the training pictures' form."""
    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for k, field in enumerate(digits):
        canvas[:, SLOT * k:SLOT * (k + 1)] = field
    return canvas


def photo_of(digits: list[np.ndarray], path, scale: float = 3.3) -> None:
    """The digits written side by side as on paper: each cut to its ink, 6-column gaps, dark on light, enlarged
    (bilinear), a wide margin and a little paper grain; saved as PNG."""
    from PIL import Image

    cut = [d[:, np.flatnonzero(d.any(axis=0))[0]:np.flatnonzero(d.any(axis=0))[-1] + 1] for d in digits]
    row = np.concatenate([np.pad(c, ((0, 0), (0, 6))) for c in cut], axis=1)
    paper = 255 - np.pad(row, ((10, 14), (17, 9)))
    big = Image.fromarray(paper).resize((round(paper.shape[1] * scale), round(paper.shape[0] * scale)),
                                        Image.Resampling.BILINEAR)
    grain = np.random.default_rng(0).integers(0, 12, size=(big.height, big.width))
    Image.fromarray(np.clip(np.asarray(big, dtype=np.int64) - grain, 0, 255).astype(np.uint8)).save(path)


def test_caption_sample_reads_a_photo_of_mnist_test_digits(capsys, tmp_path, trained, mnist):
    """Three MNIST test digits written as a user would photograph them (dark on light, enlarged, placed
    anywhere) are captioned with the right string. The digits are the first three-digit group, among
    consecutive test digits, that the small fixture model captions right in the training pictures' form:
    what is tested is that the photo reaches the model in that form."""
    images, labels = mnist.test.images.numpy(), mnist.test.labels.numpy()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for start in range(0, 300, 3):
        digits = [images[start + k] for k in range(3)]
        truth = " ".join(names[labels[start + k]] for k in range(3))
        from rnnlab.caption.metrics import caption_strings

        # Read right where MNIST puts the digits and shifted by 2 columns either way: digits the model reads
        # reliably, so that a wrong caption of the photo means the photo did not reach the model in that form.
        shifted = np.stack([np.roll(canonical(digits), s, axis=1) for s in (-2, 0, 2)])
        if caption_strings(trained.trainer.caption(shifted), list(DIGIT_WORDS)) == [truth] * 3:
            break
    else:
        pytest.fail("the fixture model captions none of the groups right")
    photo = tmp_path / "my digits.png"
    photo_of(digits, photo)
    code, out, err = cli(capsys, "caption", "sample", trained.run_dir, photo, "--out", tmp_path / "seen.png")
    assert code == 0, err
    assert f"{photo}: {truth}" in out
    assert (tmp_path / "seen.png").stat().st_size > 1000


def test_sample_preprocessing_matches_the_training_form(mnist):
    from rnnlab.caption.sample import to_digit_string

    digits = [mnist.test.images[k].numpy() for k in (0, 1, 2, 3)]
    light_paper = 1.0 - np.kron(canonical(digits).astype(np.float64) / 255.0, np.ones((3, 3)))
    made = to_digit_string(np.pad(light_paper, 20, constant_values=1.0))
    # Each digit is re-made the MNIST way (to_mnist) into its slot: close to the original fields.
    assert np.abs(made.astype(int) - canonical(digits).astype(int)).mean() < 12


def test_sample_refuses_what_it_cannot_read(capsys, tmp_path, trained):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((40, 120), 255, dtype=np.uint8)).save(blank)
    five = tmp_path / "five marks.png"
    marks = np.full((40, 200), 255, dtype=np.uint8)
    for k in range(5):
        marks[10:30, 10 + 38 * k:20 + 38 * k] = 0
    Image.fromarray(marks).save(five)
    for picture, words in ((blank, "no writing found"), (five, "5 separate marks")):
        code, out, err = cli(capsys, "caption", "sample", trained.run_dir, picture)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(capsys, "caption", "sample", tmp_path / "no-run", blank)
    assert code == 2 and "not a caption run folder" in err


# ---------------------------------------------------------------------------------------------------
# The command line: train, report, mistakes
# ---------------------------------------------------------------------------------------------------


def test_cli_train_dry_run_then_report(capsys, tmp_path, mnist_dir, trained):
    out = tmp_path / "dry"
    code, stdout, err = cli(capsys, "caption", "train", "--dry-run", "--data-dir", mnist_dir, "--out", out,
                            "--decoder", "rnn", "--hidden-size", "16", "--encoder-hidden", "16")
    assert code == 0, err
    assert "Test: exact match" in stdout and (out / "model.pt").is_file()
    code, _, err = cli(capsys, "caption", "train", "--data-dir", mnist_dir, "--out", out)
    assert code == 2 and "already holds a run" in err
    code, stdout, err = cli(capsys, "caption", "train", "--resume", out)
    assert code == 0 and "already complete" in stdout
    code, stdout, err = cli(capsys, "caption", "report", trained.run_dir, out, "--out", tmp_path,
                            "--beam-size", "2")
    assert code == 0, err
    assert "exact match" in stdout and "length 4" in stdout and "(beam 2)" in stdout
    saved = json.loads((tmp_path / "caption_report.json").read_text())
    assert set(saved) == {trained.run_dir.name, "dry"}
    assert saved["dry"]["decoder"] == "rnn" and "by_length" in saved["dry"]["greedy"]
    page = (tmp_path / "caption_report.html").read_text()
    assert "by_length.png" in page and (tmp_path / "by_length.png").is_file()
    assert (tmp_path / f"captions-{trained.run_dir.name}.png").is_file()


def test_sigterm_says_the_resume_command_that_works(tmp_path, mnist_dir):
    """SIGTERM mid-run: exit 143 and "resume with: rnnlab caption train --resume DIR", which then finishes the run."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "caption", "train", "--dry-run", "--data-dir", str(mnist_dir),
                             "--out", str(out), "--decoder", "rnn", "--hidden-size", "16", "--encoder-hidden", "16"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err
    hint = f"resume with: rnnlab caption train --resume {out}"
    assert err.strip().endswith(hint) and "Traceback" not in err, err
    resumed = subprocess.run([sys.executable, "-m", "rnnlab", *hint.split("rnnlab ", 1)[1].split()],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and (out / "model.pt").is_file(), resumed.stderr


@pytest.mark.parametrize("argv,words", [
    (["--decoder", "gru"], "invalid choice"),
    (["--lr", "0"], "--lr must be a positive number"),
    (["--epochs", "0"], "--epochs must be a positive whole number"),
    (["--features-from", "x"], "--features-from is for --backend numpy"),
    (["--backend", "numpy", "--decoder", "scratch-lstm"], "--decoder lstm or rnn"),
    (["--resume", "nowhere", "--out", "x"], "leave out --out"),
    (["--resume", "nowhere"], "not a caption run folder"),
])
def test_cli_mistakes_are_one_line_and_exit_2(capsys, tmp_path, argv, words):
    code, out, err = cli(capsys, "caption", "train", "--out", tmp_path / "r", *argv) if "--resume" not in argv \
        else cli(capsys, "caption", "train", *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------------
# CS231n's COCO files
# ---------------------------------------------------------------------------------------------------


def write_coco(folder, rng) -> dict:
    """A tiny folder in the format of CS231n's coco_captioning files (HDF5 + JSON), with a learnable rule:
    each image's caption names the word its feature vector points at."""
    import h5py

    words = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat", "dog", "sits", "runs", "here"]
    word_to_idx = {w: i for i, w in enumerate(words)}
    folder.mkdir()
    data = {}
    for split, images in (("train", 40), ("val", 12)):
        features = rng.standard_normal((images, 16)).astype(np.float32)
        animal = np.where(features[:, 0] > 0, word_to_idx["cat"], word_to_idx["dog"])
        idxs = np.repeat(np.arange(images), 2)  # two captions per image
        captions = np.zeros((len(idxs), 17), dtype=np.int32)
        for row, image in enumerate(idxs):
            verb = word_to_idx["sits"] if row % 2 == 0 else word_to_idx["runs"]
            captions[row, :6] = [1, word_to_idx["a"], animal[image], verb, word_to_idx["here"], 2]
        with h5py.File(folder / f"{split}2014_vgg16_fc7_pca.h5", "w") as f:
            f["features"] = features
        data[f"{split}_captions"], data[f"{split}_image_idxs"] = captions, idxs
    with h5py.File(folder / "coco2014_captions.h5", "w") as f:
        for key, value in data.items():
            f[key] = value
    (folder / "coco2014_vocab.json").write_text(json.dumps({"idx_to_word": words, "word_to_idx": word_to_idx}))
    return data


def test_coco_files_load_and_train(tmp_path):
    from rnnlab.caption.coco import CocoTask, load_coco_data
    from rnnlab.caption.train import train_caption

    written = write_coco(tmp_path / "coco", np.random.default_rng(0))
    data = load_coco_data(tmp_path / "coco")
    for key in ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs", "train_features",
                "val_features", "idx_to_word", "word_to_idx"):
        assert key in data
    np.testing.assert_array_equal(data["train_captions"], written["train_captions"])
    task = CocoTask(tmp_path / "coco", seed=0, test_size=5)
    assert task.test_inputs.shape == (5, 16) and all(len(refs) == 2 for refs in task.test_references)
    features, captions = task.train_batch(8, 0, 0)
    assert features.shape == (8, 16) and captions.shape == (8, 17)
    for backend, decoder in (("torch", "lstm"), ("numpy", "lstm")):
        run = train_caption(CaptionConfig(data="coco", data_dir=str(tmp_path / "coco"), backend=backend,
                                          decoder=decoder, epochs=30, epoch_size=80, batch_size=16, test_size=12,
                                          hidden_size=16, wordvec_dim=8, lr=1e-2),
                            tmp_path / f"run-{backend}", log=lambda m: None)
        assert run.metrics["bleu4"] > 0.5, (backend, run.metrics)


def test_coco_without_the_files_says_where_they_come_from(capsys, tmp_path):
    from rnnlab.caption.coco import load_coco_data
    from rnnlab.errors import DataError

    with pytest.raises(DataError, match="cs231n.stanford.edu/coco_captioning.zip"):
        load_coco_data(tmp_path)
    code, _, err = cli(capsys, "caption", "train", "--data", "coco", "--data-dir", tmp_path, "--out", tmp_path / "r")
    assert code == 2 and "coco2014_captions.h5" in err and len(err.strip().splitlines()) == 1
