"""A bounded load test of `rnnlab serve` on loopback: requests/s, latency percentiles, errors and memory.

It starts its own server (`python -m rnnlab serve RUN... --port 0`, so on 127.0.0.1 and a free port),
sends a fixed number of `POST /api/read` requests per series from a small asyncio HTTP/1.1 client with
keep-alive connections, and stops the server at the end. Nothing is sent anywhere but 127.0.0.1; every
series stops after `--requests` requests or `--time-cap` seconds, whichever comes first.

Good requests are what the page sends while a digit is drawn: real MNIST test digits drawn on the page's
280×280 pad (white on black), cut to the ink plus a margin, as a grayscale PNG, without gates; the second series asks `?gates=1`, as the page
does when the drawing settles. `--hostile` of the requests (10% by default) are bad on purpose, cycling
through: a body over 1 MiB, a file that is not a picture, a PNG whose header claims 50,000×50,000 pixels,
a blank canvas, pixels of the wrong shape, broken JSON, an unknown model and an unsupported content type.
Each must get its 4xx; any 5xx, a 2xx for a hostile request or a failed good request counts as an error.

    python benchmarks/serve_load.py                        # the newest finished runs under runs/
    python benchmarks/serve_load.py runs/lab-x/rnn runs/lab-x/lstm --requests 5000 --concurrency 1 8 32

Prints one table (markdown) with, per series and concurrency: good requests/s, p50/p95/p99 latency of
the good requests, errors, 5xx, and the server's RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"
HOST = "127.0.0.1"  # loopback only, by construction: the server is started here on this address


# ---- what is sent ----------------------------------------------------------------------------------

PAD, MARGIN = 280, 23  # the page's pad, and what it keeps around the ink (half its pen, 2 px, a 12 px margin)


def canvas_png(digit: np.ndarray, crop: bool = True) -> bytes:
    """A 28×28 MNIST digit as the page sends a drawing: drawn on the 280×280 pad (white on black), cut to
    the ink plus a black margin, as an 8-bit grayscale PNG (the page's own PNG writer; the server reads the
    same 28×28 as from the whole pad's RGBA PNG)."""
    big = Image.fromarray(digit).resize((PAD, PAD), Image.Resampling.BICUBIC)
    if crop:
        rows, cols = np.nonzero(np.asarray(big) > 0)
        big = big.crop((max(0, cols.min() - MARGIN), max(0, rows.min() - MARGIN),
                        min(PAD, cols.max() + 1 + MARGIN), min(PAD, rows.max() + 1 + MARGIN)))
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    return buffer.getvalue()


def whole_pad_png(page_png: bytes) -> bytes:
    """The same drawing as the canvas's own PNG of the whole pad: 280×280 RGBA (what the page does not send)."""
    drawn = Image.open(io.BytesIO(page_png)).convert("L")
    pad = Image.new("L", (PAD, PAD))
    pad.paste(drawn, ((PAD - drawn.width) // 2, (PAD - drawn.height) // 2))
    buffer = io.BytesIO()
    pad.convert("RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (8-bit grey) with one tiny IDAT: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def hostile_requests() -> list[tuple[str, str, bytes, str, tuple[int, ...]]]:
    """(name, path, body, content type, accepted statuses) of each kind of bad request."""
    blank = canvas_png(np.zeros((28, 28), np.uint8), crop=False)
    return [
        ("body over 1 MiB", "/api/read", b"\0" * ((1 << 20) + 1), "image/png", (413,)),
        ("not a picture", "/api/read", b"this is not a picture at all\n" * 20, "image/png", (422,)),
        ("50,000² pixel header", "/api/read", png_header_only(50_000, 50_000), "image/png", (422,)),
        ("blank canvas", "/api/read", blank, "image/png", (422,)),
        ("pixels 27×28", "/api/read", json.dumps({"pixels": [[0] * 28] * 27}).encode(), "application/json", (422,)),
        ("broken JSON", "/api/read", b'{"pixels": [[0, 1', "application/json", (400,)),
        ("unknown model", "/api/read?model=transformer", blank, "image/png", (404,)),
        ("text/plain", "/api/read", b"7", "text/plain", (415,)),
    ]


# ---- a minimal keep-alive HTTP/1.1 client (cheap: the load generator shares the server's two cores) ----

class Connection:
    def __init__(self, port: int):
        self.port, self.reader, self.writer = port, None, None

    async def request(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # the server may have closed an idle or refused connection: reconnect once
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            try:
                self.writer.write(head + body)
                await self.writer.drain()
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        body = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass
        self.reader = self.writer = None


# ---- one series --------------------------------------------------------------------------------------

@dataclass
class Series:
    gates: bool
    concurrency: int
    sent: int = 0
    good: int = 0
    hostile: int = 0
    errors: int = 0
    server_errors: int = 0
    latencies: list = field(default_factory=list)
    seconds: float = 0.0
    rss_before: float = 0.0
    rss_after: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU (user + system) the server used during the series
    client_cpu: float = 0.0
    examples: list = field(default_factory=list)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1e3 if self.latencies else float("nan")


async def run_series(port: int, pngs: list[bytes], labels: list[int], series: Series, requests: int,
                     hostile_every: int, time_cap: float) -> None:
    hostile = hostile_requests()
    path = "/api/read?gates=1" if series.gates else "/api/read"
    counter = iter(range(requests))
    deadline = time.monotonic() + time_cap

    async def worker() -> None:
        connection = Connection(port)
        try:
            for k in counter:
                if time.monotonic() > deadline:
                    return
                series.sent += 1
                if hostile_every and k % hostile_every == hostile_every - 1:
                    name, bad_path, body, kind, expected = hostile[(k // hostile_every) % len(hostile)]
                    try:
                        status, _ = await connection.request(bad_path, body, kind)
                    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                        status = 0
                    series.hostile += 1
                    series.server_errors += status >= 500
                    if status not in expected:
                        series.errors += 1
                        series.examples.append(f"{name}: HTTP {status}, expected {expected}")
                    continue
                digit = k % len(pngs)
                start = time.perf_counter()
                try:
                    status, body = await connection.request(path, pngs[digit], "image/png")
                except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, body = 0, str(exc).encode()
                elapsed = time.perf_counter() - start
                series.server_errors += status >= 500
                if status != 200 or not body.startswith(b'{"image"'):
                    series.errors += 1
                    series.examples.append(f"good request: HTTP {status} {body[:120]!r}")
                    continue
                series.good += 1
                series.latencies.append(elapsed)
                if k % 97 == 0:  # now and then, check the content too (parsing every gate answer costs CPU)
                    answers = [m["answer"] for m in json.loads(body)["models"]]
                    if not all(isinstance(a, int) and 0 <= a <= 9 for a in answers):
                        series.errors += 1
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(series.concurrency)))
    series.seconds = time.perf_counter() - start


# ---- the server ------------------------------------------------------------------------------------

def start_server(runs: list[str], timeout: float = 120.0) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "rnnlab", "serve", *runs, "--host", HOST, "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        print(f"  server: {line.rstrip()}")
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return server, int(found.group(1))
    server.kill()
    raise SystemExit(f"the server did not start: {server.stdout.read()}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_digits(data_dir: Path, count: int) -> tuple[list[bytes], list[int]]:
    from rnnlab.data import load_splits

    test = load_splits("mnist", data_dir, announce=lambda _: None).test
    images = test.images[:count].numpy()
    return [canvas_png(image) for image in images], [int(y) for y in test.labels[:count]]


def stage_costs(runs: list[str], data_dir: Path, repeats: int = 200) -> list[tuple[str, float]]:
    """CPU milliseconds of each stage of one reading, measured in this process on one thread, as the server
    runs them (and, for comparison, the alternatives it does not use): where a request's time goes."""
    import torch
    from threadpoolctl import threadpool_limits

    from rnnlab.report.images import grayscale_from_bytes, to_mnist
    from rnnlab.serve.app import to_json
    from rnnlab.serve.catalog import load_models, newest_runs
    from rnnlab.serve.reading import read_digits

    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
    models = load_models(runs or newest_runs())
    pngs, _ = load_digits(data_dir, 50)
    whole_pads = [whole_pad_png(png) for png in pngs]
    grays = [grayscale_from_bytes(p) for p in pngs]
    digits = np.stack([to_mnist(g) for g in grays])

    def cpu_ms(work, per: int = 1, count: int = repeats) -> float:
        work(0)
        start = time.process_time()
        for k in range(count):
            work(k)
        return 1e3 * (time.process_time() - start) / count / per

    rows = [("decode the page's PNG (PIL)", cpu_ms(lambda k: grayscale_from_bytes(pngs[k % 50]))),
            ("  (the whole pad as the canvas's RGBA PNG instead)", cpu_ms(lambda k: grayscale_from_bytes(whole_pads[k % 50]))),
            ("MNIST conversion (to_mnist)", cpu_ms(lambda k: to_mnist(grays[k % 50])))]
    for m in models:
        rows.append((f"{m.name}: one digit alone", cpu_ms(lambda k: read_digits(m, digits[k % 50:k % 50 + 1]))))
        rows.append((f"{m.name}: per digit in a batch of 8", cpu_ms(lambda k: read_digits(m, digits[:8]), per=8)))
        if m.lstm:
            few = max(1, repeats // 10)
            rows.append((f"{m.name}: gates of one digit", cpu_ms(lambda k: read_digits(m, digits[:1], True), count=few)))
            with threadpool_limits(limits=2, user_api="blas"):
                rows.append(("  (with OpenBLAS on 2 threads instead)", cpu_ms(lambda k: read_digits(m, digits[:1], True), count=few)))
    answer = {"image": digits[0], "models": [read_digits(m, digits[:1])[0] for m in models]}
    gated = {"image": digits[0], "models": [read_digits(m, digits[:1], True)[0] for m in models]}

    def stdlib_json(result: dict) -> bytes:
        return json.dumps(result, default=lambda a: a.tolist(), separators=(",", ":")).encode()

    rows.append(("JSON of an answer (orjson)", cpu_ms(lambda k: to_json(answer))))
    rows.append(("  (with the standard library's json instead)", cpu_ms(lambda k: stdlib_json(answer))))
    few = max(1, repeats // 10)
    rows.append((f"JSON of an answer with gates ({len(to_json(gated)) / 1024:.0f} KiB)", cpu_ms(lambda k: to_json(gated), count=few)))
    rows.append(("  (with the standard library's json instead)", cpu_ms(lambda k: stdlib_json(gated), count=few)))
    return rows


def framework_cost(port: int, pid: int, requests: int = 2000) -> float:
    """Server CPU ms per request for HTTP + FastAPI alone: an unknown ?model= is answered 404 before any work."""
    async def go() -> None:
        connections = [Connection(port) for _ in range(8)]
        counter = iter(range(requests))

        async def worker(connection: Connection) -> None:
            for _ in counter:
                await connection.request("/api/read?model=none", b"x", "image/png")
            await connection.close()

        await asyncio.gather(*(worker(c) for c in connections))

    before = cpu_seconds(pid)
    asyncio.run(go())
    return 1e3 * (cpu_seconds(pid) - before) / requests


def table(results: list[Series]) -> str:
    lines = ["| gates | concurrency | requests (good + hostile) | seconds | good req/s | p50 ms | p95 ms | p99 ms | "
             "errors | 5xx | server CPU ms/request | server cores busy | RSS before → after (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in results:
        lines.append(f"| {'yes' if s.gates else 'no'} | {s.concurrency} | {s.sent:,} ({s.good:,} + {s.hostile:,}) | "
                     f"{s.seconds:.1f} | {s.good / s.seconds:,.0f} | {s.percentile(50):.1f} | {s.percentile(95):.1f} | "
                     f"{s.percentile(99):.1f} | {s.errors} | {s.server_errors} | {1e3 * s.server_cpu / s.sent:.1f} | "
                     f"{s.server_cpu / s.seconds:.2f} | {s.rss_before:.0f} → {s.rss_after:.0f} ({s.rss_after - s.rss_before:+.0f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="run folders to serve (default: the newest finished runs under runs/)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="MNIST IDX files (the test digits sent)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per series without gates")
    parser.add_argument("--gates-requests", type=int, default=1000, help="requests per series with ?gates=1")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--hostile", type=float, default=0.10, help="fraction of bad requests mixed in")
    parser.add_argument("--time-cap", type=float, default=120.0, help="seconds at most per series")
    parser.add_argument("--digits", type=int, default=500, help="distinct test digits sent")
    parser.add_argument("--no-gates-series", action="store_true", help="skip the ?gates=1 series")
    parser.add_argument("--stage-repeats", type=int, default=200, help="repeats of each stage in the profile")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    pngs, labels = load_digits(args.data_dir, args.digits)
    print("where one reading's CPU time goes (this process, one thread):")
    for stage, milliseconds in stage_costs(args.runs, args.data_dir, args.stage_repeats):
        print(f"  {stage:<52} {milliseconds:6.2f} ms")
    hostile_every = round(1 / args.hostile) if args.hostile > 0 else 0
    print(f"{len(pngs)} test digits as the page's pad PNGs ({np.mean([len(p) for p in pngs]) / 1024:.1f} KiB on "
          f"average); 1 request in {hostile_every or 'none'} hostile; load average before: {os.getloadavg()}")
    server, port = start_server(args.runs)
    results = []
    try:
        warm = Series(gates=True, concurrency=2)
        asyncio.run(run_series(port, pngs, labels, warm, 40, 0, 60))  # first requests pay one-off costs
        print(f"  HTTP + FastAPI alone: {framework_cost(port, server.pid):.2f} ms of server CPU per request")
        plan = [(False, args.requests)] + ([] if args.no_gates_series else [(True, args.gates_requests)])
        for gates, requests in plan:
            for concurrency in args.concurrency:
                series = Series(gates=gates, concurrency=concurrency, rss_before=rss_mb(server.pid))
                cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
                asyncio.run(run_series(port, pngs, labels, series, requests, hostile_every, args.time_cap))
                series.server_cpu = cpu_seconds(server.pid) - cpu_before
                series.client_cpu = time.process_time() - client_before
                series.rss_after = rss_mb(server.pid)
                results.append(series)
                print(f"  gates={gates!s:5} concurrency {concurrency:2}: {series.good / series.seconds:7.0f} good req/s, "
                      f"p99 {series.percentile(99):6.1f} ms, errors {series.errors}, 5xx {series.server_errors}, "
                      f"server CPU {1e3 * series.server_cpu / series.sent:.1f} ms/request (client "
                      f"{1e3 * series.client_cpu / series.sent:.1f}), load average {os.getloadavg()[0]:.2f}", flush=True)
                for example in series.examples[:3]:
                    print(f"    {example}")
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    print()
    print(table(results))
    first, last = results[0].rss_before, results[-1].rss_after
    print(f"\nserver RSS over the whole run: {first:.0f} MB → {last:.0f} MB ({last - first:+.0f} MB); "
          f"server still serving at the end: {alive}; load average after: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in vars(s).items() if k not in ("latencies",)} |
                                         {"p50_ms": s.percentile(50), "p95_ms": s.percentile(95),
                                          "p99_ms": s.percentile(99)} for s in results], indent=2))
    failed = sum(s.errors + s.server_errors for s in results)
    return 1 if failed or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
