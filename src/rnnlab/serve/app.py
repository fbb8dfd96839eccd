"""The web app: the page (static files) and its JSON API, over models loaded once at start-up.

    GET  /               the page (static/index.html; its script and style under /static/)
    GET  /api/models     what is loaded: name, model kind, dataset, test accuracy, parameters, run folder
    POST /api/read       a picture (multipart field `file`, or a raw image/png or image/jpeg body) or JSON
                         {"pixels": 28×28 numbers 0–255} → the 28×28 image the models read and each model's
                         probabilities after every row; `?gates=1` adds the LSTMs' gates; `?model=NAME`
                         (repeatable) reads with those models only
    GET  /healthz        {"status": "ok"}

Why it is shaped like this:
* Nothing heavy runs on the event loop, so a slow reading never stalls other connections: pictures
  are decoded in a pool of `workers` threads, and the models run in one more thread, on batches of
  the digits waiting (batching.py). At most `workers + max_waiting` readings are under way; past that
  the answer is 503 "busy" instead of an ever longer queue.
* The body is read by us with a limit: a declared Content-Length over `max_body` is refused before a
  byte of the body is read, and a chunked body is cut off as soon as it passes the limit. A client that
  closes the connection mid-body is dropped quietly (its 400 goes nowhere), not logged as a traceback.
* Every mistake a client can make is a 4xx with `{"detail": "<one sentence>"}`; nothing a client
  sends can raise past the handler, so the server keeps serving.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from rnnlab import __version__
from rnnlab.report.images import ImageRefused, digit_from_bytes, digit_from_pixels
from rnnlab.serve import schema
from rnnlab.serve.batching import BatchReader
from rnnlab.serve.catalog import ServedModel

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 1 << 20  # 1 MiB: a 280×280 canvas PNG is ~10 KB, a phone photo as JPEG well under this
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "image/pjpeg")
SEND = ("send a PNG or JPEG picture (a multipart field 'file', or the raw image/png or image/jpeg body) "
        "or JSON {\"pixels\": 28 rows of 28 numbers 0-255}")


class ApiError(Exception):
    """A client's mistake: `status` (4xx, or 503 when busy) and one sentence for `{"detail": ...}`."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Inference:
    """Decoding in `workers` threads, the models in a `BatchReader`; 503 beyond `workers + max_waiting` under way.

    The counter is only touched on the event loop's thread, so it needs no lock.
    """

    def __init__(self, workers: int, max_waiting: int, max_batch: int):
        self.capacity = workers + max_waiting
        self.decoders = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnlab-decode")
        self.models = BatchReader(max_batch)
        self.under_way = 0

    async def read(self, to_digit: Callable[[], np.ndarray], models: list[ServedModel], gates: bool) -> bytes:
        """The JSON answer of one reading: `to_digit()` (decoding, in a worker) then the models (batched)."""
        if self.under_way >= self.capacity:
            raise ApiError(503, f"the server is busy ({self.under_way} readings under way); try again in a moment")
        self.under_way += 1
        try:
            loop = asyncio.get_running_loop()
            digit = await loop.run_in_executor(self.decoders, to_digit)
            result = await asyncio.wrap_future(self.models.submit(digit, models, gates))
            if gates:  # ~36,000 numbers: ~2 ms of JSON writing, kept off the event loop
                return await loop.run_in_executor(self.decoders, to_json, result)
            return to_json(result)
        finally:
            self.under_way -= 1

    def close(self) -> None:
        self.decoders.shutdown(wait=True, cancel_futures=True)
        self.models.close()


def to_json(result: dict) -> bytes:
    """JSON bytes of a reading; orjson writes the NumPy arrays directly (and ~15× faster than json)."""
    return orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)


def create_app(models: list[ServedModel], *, workers: int = 2, max_waiting: int = 64, max_batch: int = 16,
               max_body: int = MAX_BODY) -> FastAPI:
    """The app serving `models` (loaded already: see `catalog.load_models`). Usable with TestClient."""
    if not models:
        raise ValueError("create_app needs at least one model")
    by_name = {m.name: m for m in models}
    inference = Inference(workers, max_waiting, max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        inference.close()

    app = FastAPI(title="rnnlab serve", version=__version__, lifespan=lifespan,
                  summary="Draw a digit and watch recurrent networks read it, row by row.")
    app.state.models, app.state.inference = models, inference
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", response_model=schema.Health, summary="Liveness: the server answers")
    async def healthz() -> dict:
        return {"status": "ok", "models": len(models)}

    @app.get("/api/models", response_model=schema.ModelList, summary="The loaded models")
    async def list_models() -> dict:
        return {"models": [m.describe() for m in models]}

    @app.post("/api/read", summary="Read a digit with every loaded model, row by row",
              responses={200: {"model": schema.Reading}, **schema.ERRORS}, openapi_extra=schema.READ_BODY)
    async def read(request: Request,
                   gates: bool = Query(False, description="add the LSTMs' gates i, f, o, g, c per layer (T×H each)"),
                   model: list[str] | None = Query(None, description="read with this model only (repeatable)")
                   ) -> Response:
        chosen = _choose(by_name, model)
        body = await _read_body(request, max_body)
        to_digit = await _digit_source(request, body)
        # Written by hand rather than through a response model: validating ~36,000 gate values would cost
        # more than computing them. The schema above documents the same shape.
        return Response(await inference.read(to_digit, chosen, gates), media_type="application/json")

    return app


def _choose(by_name: dict[str, ServedModel], names: list[str] | None) -> list[ServedModel]:
    if not names:
        return list(by_name.values())
    names = [n for name in names for n in name.split(",") if n]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ApiError(404, f"unknown model {unknown[0]!r}: choose from {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    too_big = f"the request body is over the {limit // 1024:,} KiB limit; send a smaller picture"
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise ApiError(413, too_big)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, too_big)
            chunks.append(chunk)
    except ClientDisconnect:  # the client gave up mid-upload: nobody is left to answer, and nothing to log
        raise ApiError(400, "the connection closed before the whole body came; send the picture again") from None
    return b"".join(chunks)


async def _digit_source(request: Request, body: bytes) -> Callable[[], np.ndarray]:
    """From the request's content type, a function that makes the (28, 28) uint8 digit (run in a worker:
    decoding a picture is CPU work). Mistakes that need no decoding are raised here, at once."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not body:
        raise ApiError(400, f"the request body is empty; {SEND}")
    if content_type == "multipart/form-data":
        data = await _multipart_file(request, body)
        return lambda: digit_from_bytes(data, "the uploaded file")
    if content_type in IMAGE_TYPES or content_type.startswith("image/"):
        return lambda: digit_from_bytes(body, "the picture")
    if content_type == "application/json":
        try:
            values = orjson.loads(body)  # strict JSON (no NaN), nesting limited: never a RecursionError
        except orjson.JSONDecodeError:
            raise ApiError(400, "the body is not valid JSON; send {\"pixels\": 28 rows of 28 numbers 0-255}") from None
        if not isinstance(values, dict) or "pixels" not in values:
            raise ApiError(422, "the JSON has no \"pixels\"; send {\"pixels\": 28 rows of 28 numbers 0-255}")
        pixels = values["pixels"]
        return lambda: digit_from_pixels(pixels, "pixels")
    shown = content_type or "no content type"
    raise ApiError(415, f"{shown} is not read; {SEND}")


async def _multipart_file(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field `file`, parsed from the body we already read (within the limit)."""

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except (StarletteHTTPException, ValueError, KeyError) as exc:  # python-multipart's own parse errors
        detail = getattr(exc, "detail", None) or str(exc) or "malformed"
        raise ApiError(400, f"the multipart body cannot be read ({detail}); send the picture in the field 'file'") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "the multipart body has no file in the field 'file'; send the picture as 'file'")
        return await upload.read()
    finally:
        await form.close()


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as `{"detail": "<one sentence>"}` with its status."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(ImageRefused)
    async def refused(request: Request, exc: ImageRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = " ".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body"))
        message = str(first.get("msg", "invalid request")).rstrip(".")
        return JSONResponse({"detail": f"{where}: {message}" if where else message}, status_code=422)
