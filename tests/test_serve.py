"""`rnnlab serve`'s JSON API (FastAPI's TestClient and httpx) on real MNIST test digits: the same numbers as
`rnnlab predict` and as the model's own forward pass, gates that rebuild h, a 4xx with one sentence for
every bad input (and the server serving on), inference off the event loop, and the command's own errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from serve_helpers import REPO, Server, canvas_png, mnist_digits, paper_png, trained_runs

from rnnlab.cli import main
from rnnlab.data import sequence_inputs
from rnnlab.report.images import MAX_PIXELS, load_digit
from rnnlab.report.introspect import recompute_hidden
from rnnlab.report.predict import classify
from rnnlab.serve import create_app, load_models
from rnnlab.serve.batching import BatchReader
from rnnlab.serve.catalog import newest_runs
from rnnlab.serve.reading import read_digit


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    return trained_runs(tmp_path_factory, mnist_dir)


@pytest.fixture(scope="module")
def models(runs):
    return load_models([runs["rnn"], runs["lstm"]])


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models)) as client:  # `with`: the app's start-up and shutdown run
        yield client


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist_digits(mnist, 10)


def own_forward(served, digit: np.ndarray) -> np.ndarray:
    """The model's own forward pass on the 28×28 digit: softmax of its logits (C,)."""
    with torch.inference_mode():
        logits = served.model(sequence_inputs(served.config, torch.as_tensor(digit[None])))
    return logits.softmax(dim=-1)[0].numpy()


def post_png(client, data: bytes, query: str = ""):
    return client.post(f"/api/read{query}", content=data, headers={"Content-Type": "image/png"})


def good_request_succeeds(client, digits) -> None:
    response = post_png(client, canvas_png(digits[0][0]))
    assert response.status_code == 200, response.text
    assert len(response.json()["models"]) == 2


# --- what is loaded ---------------------------------------------------------------------------------

def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "models": 2}


def test_models_lists_each_loaded_model(client, runs, models):
    listed = client.get("/api/models").json()["models"]
    assert [m["name"] for m in listed] == ["rnn", "lstm"]
    for entry, served, name in zip(listed, models, ("rnn", "lstm")):
        metrics = json.loads((runs[name] / "metrics.json").read_text())
        assert entry["model"] == name and entry["dataset"] == "mnist"
        assert entry["test_accuracy"] == metrics["test_accuracy"]
        assert entry["parameters"] == sum(p.numel() for p in served.model.parameters()) == metrics["parameters"]
        assert entry["run_dir"] == str(runs[name])
        assert entry["lstm"] is (name == "lstm") and entry["steps"] == 28 and len(entry["classes"]) == 10


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200
    assert "http" not in "".join(line for line in page.text.splitlines() if "src=" in line or "href=" in line
                                 if "/docs" not in line), "the page must load nothing from another host"
    assert client.get("/openapi.json").json()["paths"]["/api/read"]["post"]["requestBody"]["content"]


# --- the same numbers as predict and the model itself -----------------------------------------------

def test_read_picture_matches_predict_and_the_models_forward(client, models, runs, digits, tmp_path, capsys):
    for k, (digit, _) in enumerate(digits[:6]):
        path = tmp_path / f"digit{k}.png"
        path.write_bytes(paper_png(digit))
        response = post_png(client, path.read_bytes())
        assert response.status_code == 200, response.text
        answer = response.json()
        image = np.array(answer["image"], dtype=np.uint8)
        assert image.shape == (28, 28)
        assert (image == load_digit(path)).all(), "the image read must be predict's conversion of the picture"
        assert [m["name"] for m in answer["models"]] == ["rnn", "lstm"]
        for reading, served, name in zip(answer["models"], models, ("rnn", "lstm")):
            probabilities = np.array(reading["probabilities"])
            assert probabilities.shape == (28, 10)
            final = probabilities[-1]
            expected = classify(served.model, served.config, load_digit(path)[None])[0]  # what predict computes
            assert np.abs(probabilities - expected).max() < 1e-6
            assert np.abs(final - own_forward(served, image)).max() < 1e-6
            assert reading["answer"] == int(final.argmax()) == reading["top3"][0]["class"]
            assert reading["label"] == str(reading["answer"]) and reading["gates"] is None
            # and what `rnnlab predict` prints for the same file: its top 3, to its 0.1% rounding
            assert main(["predict", str(runs[name]), str(path)]) == 0
            printed = capsys.readouterr().out.strip().split(": ", 1)[1]
            ranked = [(int(c), float(p)) for c, p in re.findall(r"(\d) ([\d.]+)%", printed)]
            assert [c for c, _ in ranked] == [r["class"] for r in reading["top3"]]
            assert all(abs(p - 100 * r["probability"]) <= 0.051 for (_, p), r in zip(ranked, reading["top3"]))


def test_pixels_are_read_as_they_are(client, models, digits):
    right = 0
    for digit, label in digits:
        response = client.post("/api/read", json={"pixels": digit.tolist()})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["image"] == digit.tolist()
        for reading, served in zip(answer["models"], models):
            final = np.array(reading["probabilities"][-1])
            assert np.abs(final - own_forward(served, digit)).max() < 1e-6
            assert reading["answer"] == int(final.argmax())
        right += answer["models"][1]["answer"] == label
    assert right >= 8, f"the LSTM read only {right} of 10 real test digits right"


def test_upload_field_and_raw_body_agree(client, digits):
    data = paper_png(digits[1][0])
    raw = post_png(client, data).json()
    uploaded = client.post("/api/read", files={"file": ("two.png", data, "image/png")}).json()
    assert uploaded == raw
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(jpeg, "JPEG", quality=95)
    as_jpeg = client.post("/api/read", content=jpeg.getvalue(), headers={"Content-Type": "image/jpeg"})
    assert as_jpeg.status_code == 200 and as_jpeg.json()["models"][1]["answer"] == raw["models"][1]["answer"]


def test_the_pads_crop_reads_like_the_whole_pad(client, digits):
    """The page sends the inked part of its pad plus a black margin, as a grayscale PNG (or, in an older
    browser, the canvas's RGBA PNG): the models read the very same image as from the whole pad."""
    for digit, _ in digits[:5]:
        whole = Image.open(io.BytesIO(canvas_png(digit)))
        ink = np.nonzero(np.asarray(whole.convert("L")) > 0)
        box = (max(0, ink[1].min() - 23), max(0, ink[0].min() - 23), min(280, ink[1].max() + 24),
               min(280, ink[0].max() + 24))
        expected = post_png(client, canvas_png(digit)).json()
        for mode in ("RGBA", "L"):
            cropped = io.BytesIO()
            whole.crop(box).convert(mode).save(cropped, "PNG")
            assert post_png(client, cropped.getvalue()).json() == expected


def test_model_choice(client, digits):
    only = post_png(client, canvas_png(digits[0][0]), "?model=lstm").json()
    assert [m["name"] for m in only["models"]] == ["lstm"]
    both = post_png(client, canvas_png(digits[0][0]), "?model=lstm&model=rnn").json()
    assert [m["name"] for m in both["models"]] == ["lstm", "rnn"]


def test_gates_rebuild_the_models_own_hidden_state(client, models, digits):
    lstm = models[1]
    for digit, _ in digits[:3]:
        response = client.post("/api/read?gates=1", json={"pixels": digit.tolist()})
        assert response.status_code == 200
        rnn_reading, lstm_reading = response.json()["models"]
        assert rnn_reading["gates"] is None, "an RNN has no gates"
        layers = lstm_reading["gates"]
        assert len(layers) == lstm.config.num_layers == 2
        x = sequence_inputs(lstm.config, torch.as_tensor(digit[None]))
        with torch.inference_mode():
            output, (h_n, c_n) = lstm.model.recurrent(x)
        for k, layer in enumerate(layers):
            assert set(layer) == {"i", "f", "o", "g", "c"}
            arrays = {name: np.array(values) for name, values in layer.items()}
            assert all(a.shape == (28, lstm.config.hidden_size) for a in arrays.values())
            c, h = recompute_hidden(arrays)
            assert np.abs(c - arrays["c"]).max() < 1e-5
            assert np.abs(h[-1] - h_n[k, 0].numpy()).max() < 1e-5
            assert np.abs(c[-1] - c_n[k, 0].numpy()).max() < 1e-5
            if k == len(layers) - 1:
                assert np.abs(h - output[0].numpy()).max() < 1e-5
        assert lstm_reading["probabilities"] == client.post("/api/read", json={"pixels": digit.tolist()}).json()[
            "models"][1]["probabilities"], "asking for gates must not change the probabilities"


# --- bad input: a 4xx with one sentence, and the server goes on serving ------------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (8-bit grey) with one tiny IDAT: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (280, 280), (0, 0, 0, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (50, 50), 255).save(buffer, "GIF")
    return buffer.getvalue()


PNG, JSON = {"Content-Type": "image/png"}, {"Content-Type": "application/json"}
pixels = lambda rows: json.dumps({"pixels": rows}).encode()  # noqa: E731
row = [0] * 28
BAD = {
    "body over 1 MiB": (dict(content=b"\0" * ((1 << 20) + 1), headers=PNG), 413, "1,024 KiB"),
    "chunked body over 1 MiB": (dict(content=iter([b"\0" * 65536] * 17), headers=PNG), 413, "1,024 KiB"),
    "upload over 1 MiB": (dict(files={"file": ("big.png", b"\0" * ((1 << 20) + 1), "image/png")}), 413, "KiB"),
    "over the pixel limit": (dict(content=png_header_only(8000, MAX_PIXELS // 8000 + 1), headers=PNG), 422, "pixels"),
    "decompression bomb": (dict(content=png_header_only(50_000, 50_000), headers=PNG), 422, "too large"),
    "not a picture": (dict(content=b"hello, this is text" * 10, headers=PNG), 422, "not a picture"),
    "truncated PNG": (dict(content=canvas_png(np.eye(28, dtype=np.uint8) * 255)[:300], headers=PNG), 422, "truncated"),
    "GIF": (dict(content=gif_bytes(), headers={"Content-Type": "image/gif"}), 422, "only PNG and JPEG"),
    "blank canvas": (dict(content=blank_png(), headers=PNG), 422, "no digit"),
    "empty body": (dict(content=b"", headers=PNG), 400, "empty"),
    "text/plain": (dict(content=b"7", headers={"Content-Type": "text/plain"}), 415, "not read"),
    "no content type": (dict(content=b"7"), 415, "no content type"),
    "broken JSON": (dict(content=b'{"pixels": [[0,', headers=JSON), 400, "not valid JSON"),
    "JSON without pixels": (dict(content=b'{"image": []}', headers=JSON), 422, "no \"pixels\""),
    "JSON array": (dict(content=b"[1, 2]", headers=JSON), 422, "no \"pixels\""),
    "27 rows": (dict(content=pixels([row] * 27), headers=JSON), 422, "not 28×28"),
    "ragged rows": (dict(content=pixels([row] * 27 + [[0] * 27]), headers=JSON), 422, "not 28×28"),
    "pixels a string": (dict(content=pixels("seven"), headers=JSON), 422, "28 rows"),
    "value 300": (dict(content=pixels([row] * 27 + [[300] + [0] * 27]), headers=JSON), 422, "0 to 255"),
    "value -1": (dict(content=pixels([row] * 27 + [[-1] + [255] * 27]), headers=JSON), 422, "0 to 255"),
    "value a string": (dict(content=pixels([row] * 27 + [["7"] + [0] * 27]), headers=JSON), 422, "a number"),
    "value true": (dict(content=pixels([row] * 27 + [[True] + [0] * 27]), headers=JSON), 422, "a number"),
    "value NaN (not JSON)": (dict(content=b'{"pixels": [' + b",".join([b"[NaN" + b",0" * 27 + b"]"] * 28) + b"]}",
                                  headers=JSON), 400, "not valid JSON"),
    "value 1e400": (dict(content=b'{"pixels": [' + b",".join([b"[1e400" + b",0" * 27 + b"]"] * 28) + b"]}",
                         headers=JSON), 400, "not valid JSON"),
    "value 10**30": (dict(content=pixels([row] * 27 + [[10**30] + [0] * 27]), headers=JSON), 422, "0 to 255"),
    "JSON nested 100,000 deep": (dict(content=b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", headers=JSON),
                                 400, "not valid JSON"),
    "blank pixels": (dict(content=pixels([row] * 28), headers=JSON), 422, "no digit"),
    "multipart without file": (dict(data={"picture": "7"}, files={"other": ("x.png", b"x", "image/png")}), 422,
                               "field 'file'"),
    "broken multipart": (dict(content=b"--xyz\r\nnonsense", headers={"Content-Type": "multipart/form-data; boundary=xyz"}),
                         422, "field 'file'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_a_4xx_with_one_sentence_and_the_server_serves_on(client, digits, case):
    kwargs, status, words = BAD[case]
    response = client.post("/api/read", **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail and words in detail, detail
    good_request_succeeds(client, digits)


@pytest.mark.parametrize("query, status, words", [("?model=transformer", 404, "unknown model 'transformer'"),
                                                  ("?gates=maybe", 422, "gates"), ("?model=rnn,gru", 404, "'gru'")])
def test_bad_query_gets_a_4xx(client, digits, query, status, words):
    response = post_png(client, canvas_png(digits[0][0]), query)
    assert response.status_code == status and words in response.json()["detail"], response.text
    good_request_succeeds(client, digits)


def test_declared_oversized_body_is_refused_before_it_is_read(models):
    """A Content-Length over the limit is answered 413 without reading the body: here the body never comes."""
    app = create_app(models)
    sent = []

    async def receive():
        sent.append(1)
        await asyncio.sleep(3600)  # a client that declares 10 GB and then sends nothing

    async def run():
        messages = []

        async def send(message):
            messages.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/read", "raw_path": b"/api/read", "query_string": b"",
                 "headers": [(b"content-type", b"image/png"), (b"content-length", b"10000000000")],
                 "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "root_path": "", "app": app}
        await asyncio.wait_for(app(scope, receive, send), timeout=10)
        return messages

    messages = asyncio.run(run())
    assert messages[0]["status"] == 413 and not sent


def test_a_client_that_aborts_its_upload_leaves_no_traceback_in_the_log(mnist_dir, tmp_path):
    """Over real loopback HTTP: a Content-Length longer than the body, then the connection closed. The server
    drops the request quietly (no ClientDisconnect traceback in its log, once per request) and serves on."""
    from rnnlab.config import Config
    from rnnlab.lab import train

    config = Config(model="rnn", hidden_size=8, epochs=1, train_limit=200, test_limit=100, data_dir=str(mnist_dir))
    run_dir = train(config, tmp_path / "tiny", log=lambda _: None, quiet=True).run_dir
    server = Server([run_dir], cwd=tmp_path)
    try:
        host, port = server.url.split("//")[1].rstrip("/").split(":")
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=10) as client:
                client.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                               b"Content-Length: 5000\r\n\r\n" + b"\x89PNG" * 10)
                time.sleep(0.3)
        time.sleep(0.5)
        assert httpx.get(server.url + "healthz", timeout=30).status_code == 200
    finally:
        code = server.stop(signal.SIGINT)
    log = "\n".join(server.lines)
    assert code == 0 and "Traceback" not in log and "ClientDisconnect" not in log, log


# --- off the event loop, bounded --------------------------------------------------------------------

def test_inference_runs_off_the_event_loop(models, digits):
    """While a slow reading runs, /healthz still answers at once; and beyond the bound, 503 'busy'."""
    release = threading.Event()
    slow = load_models([models[0].run_dir])
    original = slow[0].model.logits_per_step

    def stalled(x):
        release.wait(20)
        return original(x)

    slow[0].model.logits_per_step = stalled
    app = create_app(slow, workers=1, max_waiting=1)
    body = canvas_png(digits[0][0])

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as http:
            readings = [asyncio.create_task(http.post("/api/read", content=body, headers=PNG)) for _ in range(2)]
            await asyncio.sleep(0.5)
            health = await http.get("/healthz")
            # Answered while the stalled readings still wait (a blocked /healthz would only return after the
            # stall gave up, 20 s on, with the readings done): causal, not a wall-clock bound.
            stalled_meanwhile = not any(reading.done() for reading in readings)
            busy = await http.post("/api/read", content=body, headers=PNG)  # a third: over workers + max_waiting
            release.set()
            done = await asyncio.gather(*readings)
            after = await http.post("/api/read", content=body, headers=PNG)
        return health, stalled_meanwhile, busy, done, after

    health, stalled_meanwhile, busy, done, after = asyncio.run(scenario())
    assert health.status_code == 200 and stalled_meanwhile
    assert busy.status_code == 503 and "busy" in busy.json()["detail"] and busy.headers["retry-after"] == "1"
    assert [r.status_code for r in done] == [200, 200] and after.status_code == 200


def test_batched_readings_equal_single_ones(models, digits):
    reader = BatchReader(max_batch=16)
    try:
        futures = [reader.submit(digit, models, gates=k % 2 == 0) for k, (digit, _) in enumerate(digits)]
        results = [f.result(timeout=60) for f in futures]
    finally:
        reader.close()
    assert reader.digits == len(digits) and reader.batches < len(digits), "the digits waiting were read together"
    for (digit, _), result in zip(digits, results):
        for served, reading in zip(models, result["models"]):
            alone = read_digit(served, digit, gates=reading["gates"] is not None)
            assert np.abs(np.array(reading["probabilities"]) - alone["probabilities"]).max() < 1e-6
            if alone["gates"]:
                assert all(np.abs(layer[k] - other[k]).max() < 1e-6
                           for layer, other in zip(reading["gates"], alone["gates"]) for k in layer)


# --- the command: which runs, and its mistakes ------------------------------------------------------

def test_no_runs_is_one_line_saying_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "make run" in err and "rnnlab train" in err


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert main(["serve", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not an rnnlab run folder" in err
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_a_busy_port_is_one_line(runs, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(runs["lstm"]), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"port {port}" in err and "in use" in err and "--port" in err


def test_serve_without_runs_serves_the_newest_lab(runs, tmp_path):
    """`rnnlab serve` with no run: the newest compare folder under runs/, its models in the lab's order."""
    for name, age in (("lab-20260101-000000", 1000), ("lab-20261129-120000", 0)):
        for model in ("rnn", "lstm"):
            shutil.copytree(runs[model], tmp_path / "runs" / name / model)
            stamp = time.time() - age
            os.utime(tmp_path / "runs" / name / model / "model.pt", (stamp, stamp))
        shutil.copy(runs["lstm"].parent / "comparison.json", tmp_path / "runs" / name)
    (tmp_path / "runs" / "half-done").mkdir()  # an unfinished run is skipped
    (tmp_path / "runs" / "half-done" / "config.json").write_text("{}")
    newest = tmp_path / "runs" / "lab-20261129-120000"
    assert newest_runs(tmp_path / "runs") == [newest / "rnn", newest / "lstm"]
    server = Server([], cwd=tmp_path)
    try:
        assert any("newest finished runs" in line and "lab-20261129-120000" in line for line in server.lines)
        listed = httpx.get(server.url + "api/models", timeout=30).json()["models"]
        assert [m["name"] for m in listed] == ["rnn", "lstm"]
        assert all("lab-20261129-120000" in m["run_dir"] for m in listed)
        page = httpx.get(server.url, timeout=30)
        assert page.status_code == 200 and "<canvas id=\"pad\"" in page.text
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0 and server.lines[-1] == "stopped", server.lines  # Ctrl-C is the normal way to stop it



def test_the_load_test_runs_end_to_end(runs, mnist_dir, tmp_path):
    """benchmarks/serve_load.py, tiny: it starts and stops its own server, and every request gets its answer."""
    script = REPO / "benchmarks" / "serve_load.py"
    run = subprocess.run([sys.executable, str(script), str(runs["rnn"]), str(runs["lstm"]), "--data-dir", str(mnist_dir),
                          "--requests", "60", "--gates-requests", "20", "--concurrency", "1", "4", "--digits", "60",
                          "--stage-repeats", "10", "--json", str(tmp_path / "load.json")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "| no | 4 | 60 (54 + 6) |" in run.stdout and "server still serving at the end: True" in run.stdout
    series = json.loads((tmp_path / "load.json").read_text())
    assert len(series) == 4 and all(s["errors"] == 0 and s["server_errors"] == 0 for s in series)
