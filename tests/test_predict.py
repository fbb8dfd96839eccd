"""`rnnlab predict`: real MNIST test digits redrawn as the pictures users have (dark on white, 200×200, PNG,
JPEG, 16-bit, transparent, CMYK) keep their label; bad pictures stop with one line and exit code 2."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run
from rnnlab.cli import main
from rnnlab.config import Config
from rnnlab.report.images import MAX_PIXELS, ImageRefused, load_digit

# Fast to train on two busy cores (~15 s) and ~90% right: one epoch on 20,000 images, a 1-layer LSTM of 64 units,
# large batches with a high learning rate.
GOOD = Config(model="lstm", epochs=1, train_limit=20000, test_limit=2000, hidden_size=64, num_layers=1,
              batch_size=128, lr=1e-2, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    """An LSTM trained well enough to read real digits (~90% on the test set)."""
    from dataclasses import replace

    from rnnlab.lab import train

    torch.manual_seed(0)
    run_dir = tmp_path_factory.mktemp("predict") / "lstm"
    result = train(replace(GOOD, data_dir=str(mnist_dir)), run_dir, log=lambda _: None, quiet=True)
    assert result.metrics["test_accuracy"] > 0.85, result.metrics["test_accuracy"]
    return run_dir, result.model, result.config


@pytest.fixture(scope="module")
def examples(trained, mnist):
    """The first 10 test images (one per class where possible) the model gets right in their 28×28 form."""
    from rnnlab.data import sequence_inputs

    _, model, config = trained
    images, labels = mnist.test.images[:400], mnist.test.labels[:400]
    with torch.inference_mode():
        predicted = model(sequence_inputs(config, images)).argmax(dim=1)
    chosen, classes = [], set()
    for k in range(len(labels)):
        if predicted[k] == labels[k] and int(labels[k]) not in classes:
            chosen.append(k)
            classes.add(int(labels[k]))
        if len(chosen) == 10:
            break
    assert len(chosen) == 10
    return [(images[k].numpy(), int(labels[k])) for k in chosen]


def user_picture(digit: np.ndarray, size=(200, 200)) -> Image.Image:
    """An MNIST digit as a user draws it: dark ink on white paper, scaled up."""
    return Image.fromarray(255 - digit).resize(size, Image.Resampling.BICUBIC)


def labels_printed(stdout: str) -> list[str]:
    return [line.split(": ", 1)[1].split()[0] for line in stdout.splitlines() if ": " in line and "%" in line]


def test_inverted_200px_pngs_keep_their_label(trained, examples, tmp_path, capsys):
    run_dir = trained[0]
    paths = []
    for k, (digit, _) in enumerate(examples):
        path = tmp_path / f"digit{k}.png"
        user_picture(digit).save(path)
        paths.append(path)
    code, out, err = run(capsys, "predict", run_dir, *paths)
    assert code == 0, err
    printed = labels_printed(out)
    assert len(printed) == len(paths)
    right = sum(p == str(label) for p, (_, label) in zip(printed, examples))
    assert right >= 9, out
    for line, path in zip(out.splitlines(), paths):  # file, label and the top 3 with probabilities
        assert line.startswith(f"{path}: ") and line.count("%") == 3
    # the round trip rebuilds MNIST's picture: same place, same shape
    correlations = [np.corrcoef(load_digit(path).astype(float).ravel(), digit.astype(float).ravel())[0, 1]
                    for (digit, _), path in zip(examples, paths)]
    assert np.median(correlations) > 0.95 and min(correlations) > 0.6, correlations


def test_off_centre_digit_on_grey_jpeg(trained, examples, tmp_path, capsys):
    """Not square, digit off to one side, light grey paper, JPEG noise: cropped, scaled, centred."""
    run_dir = trained[0]
    paths, truth = [], []
    for k, (digit, label) in enumerate(examples[:5]):
        canvas = np.full((300, 500), 210, np.uint8)
        ink = np.asarray(user_picture(digit, (140, 140)), dtype=np.float64) / 255.0  # 1 = paper, 0 = ink
        canvas[40:180, 300:440] = (ink * 210 + (1 - ink) * 30).astype(np.uint8)
        path = tmp_path / f"photo{k}.jpg"
        Image.fromarray(canvas).convert("RGB").save(path, quality=85)
        paths.append(path)
        truth.append(str(label))
    code, out, err = run(capsys, "predict", run_dir, *paths)
    assert code == 0, err
    assert sum(p == t for p, t in zip(labels_printed(out), truth)) >= 4, out


def converted_variants(digit: np.ndarray, tmp_path: Path) -> dict[str, Path]:
    """The supported conversions: 16-bit, transparent (dark or light strokes), palette, CMYK."""
    dark_on_white = np.asarray(user_picture(digit))
    ink = 255 - dark_on_white  # 255 where the stroke is
    files = {}
    files["16-bit.png"] = Image.fromarray(dark_on_white.astype(np.uint16) * 257)
    black = np.zeros((200, 200, 4), np.uint8)
    black[..., 3] = ink  # black strokes on a transparent sheet
    files["rgba-dark.png"] = Image.fromarray(black)
    white = np.full((200, 200, 4), 255, np.uint8)
    white[..., 3] = ink  # white strokes on a transparent sheet
    files["rgba-light.png"] = Image.fromarray(white)
    files["la.png"] = Image.fromarray(np.stack([np.zeros_like(ink), ink], axis=-1))
    files["palette.png"] = Image.fromarray(dark_on_white).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    files["cmyk.jpg"] = Image.fromarray(dark_on_white).convert("CMYK")
    paths = {}
    for name, image in files.items():
        paths[name] = tmp_path / name
        image.save(paths[name])
    return paths


def test_supported_conversions_keep_the_label(trained, examples, tmp_path, capsys):
    run_dir = trained[0]
    digit, label = examples[0]
    paths = converted_variants(digit, tmp_path)
    assert Image.open(paths["16-bit.png"]).mode.startswith("I")
    assert Image.open(paths["cmyk.jpg"]).mode == "CMYK"
    reference = load_digit(paths["16-bit.png"]).astype(int)
    code, out, err = run(capsys, "predict", run_dir, *paths.values())
    assert code == 0, err
    assert labels_printed(out) == [str(label)] * len(paths), out
    for name, path in paths.items():
        difference = np.abs(load_digit(path).astype(int) - reference).mean()
        assert difference < 12, (name, difference)  # the same picture, whatever the encoding


def test_explain_writes_the_row_by_row_picture(trained, examples, tmp_path, capsys):
    run_dir = trained[0]
    picture = tmp_path / "digit.png"
    user_picture(examples[1][0]).save(picture)
    out_png = tmp_path / "why.png"
    code, out, err = run(capsys, "predict", run_dir / "model.pt", picture, "--explain", out_png)
    assert code == 0, err
    assert f"wrote {out_png}" in out
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 150
    assert not list(tmp_path.glob(".why.png*"))  # the temporary file is gone

    code, _, err = run(capsys, "predict", run_dir, picture, picture, "--explain", tmp_path / "two.png")
    assert code == 2 and "one IMAGE" in err and not (tmp_path / "two.png").exists()


# --- bad pictures ---------------------------------------------------------------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (8-bit grey) with one tiny IDAT: a decompression bomb shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def bad_files(digit: np.ndarray) -> dict[str, tuple[bytes, str]]:
    """name → (file contents, a phrase the one-line error must contain)."""
    picture = user_picture(digit)
    good_png = png_bytes(picture)
    frames = [picture, Image.fromarray(np.asarray(picture)[::-1].copy())]
    animated = io.BytesIO()
    frames[0].save(animated, "PNG", save_all=True, append_images=frames[1:], duration=100)
    gif = io.BytesIO()
    picture.save(gif, "GIF")
    return {
        "text.png": (b"this is not a picture\n" * 10, "not a picture"),
        "empty.png": (b"", "empty"),
        "truncated.png": (good_png[: len(good_png) // 2], "truncated"),
        "bomb.png": (png_header_only(100_000, 100_000), "decompression bomb"),
        "just-too-big.png": (png_header_only(8000, MAX_PIXELS // 8000 + 1), "decompression bomb"),
        "zero-width.png": (png_header_only(0, 20), "not a picture"),
        "animated.png": (animated.getvalue(), "animated"),
        "digit.gif": (gif.getvalue(), "only PNG and JPEG"),
        "blank.png": (png_bytes(Image.new("L", (64, 64), 255)), "no digit found"),
    }


BAD = ["text.png", "empty.png", "truncated.png", "bomb.png", "just-too-big.png", "zero-width.png", "animated.png",
       "digit.gif", "blank.png"]


@pytest.mark.parametrize("name", BAD)
def test_bad_picture_is_refused_with_one_line(name, mnist, tmp_path):
    """Each bad picture is refused by `load_digit` itself, naming the file and what is wrong."""
    content, phrase = bad_files(mnist.test.images[0].numpy())[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageRefused) as refused:
        load_digit(path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and phrase in message, message


def test_bad_picture_through_the_cli_is_exit_2_and_no_output(trained, mnist, tmp_path, capsys):
    """Every picture is checked before anything is printed or written: a bad one after a good one."""
    bad = tmp_path / "truncated.png"
    bad.write_bytes(bad_files(mnist.test.images[0].numpy())["truncated.png"][0])
    good = tmp_path / "good.png"
    user_picture(mnist.test.images[0].numpy()).save(good)
    explain = tmp_path / "explain.png"
    for argv in ([good, bad], [bad, "--explain", explain]):
        code, out, err = run(capsys, "predict", trained[0], *argv)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and not explain.exists()
        assert len(lines) == 1 and lines[0].startswith("rnnlab: error: ") and str(bad) in lines[0], err


def test_missing_picture_and_missing_model(trained, tmp_path, capsys):
    code, _, err = run(capsys, "predict", trained[0], tmp_path / "nope.png")
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    picture = tmp_path / "x.png"
    Image.new("L", (10, 10)).save(picture)
    code, _, err = run(capsys, "predict", tmp_path / "no-run", picture)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
