"""`rnnlab serve [RUN_DIR_OR_CHECKPOINT ...] [--host 127.0.0.1] [--port 8000]`: the page on uvicorn.

The models are loaded, and the port taken, before the server starts, so that every mistake (no runs,
a folder that is not a run, a port in use) is one `RnnlabError` line and exit code 2, not a traceback
from inside uvicorn. `--port 0` takes any free port (the line printed says which).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Callable

from rnnlab.errors import RnnlabError


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); the usual failures become one `RnnlabError` line."""
    if not 0 <= port <= 65535:
        raise RnnlabError(f"--port {port} is not a port number; give one from 1 to 65535 (or 0 for any free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise RnnlabError(f"--host {host}: not an address of this machine ({exc.strerror}); "
                          "use 127.0.0.1 (this machine only) or 0.0.0.0 (every network)") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart without waiting
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise RnnlabError(f"port {port} on {host} is in use (another rnnlab serve?): stop that program, "
                              "or choose another port with --port") from None
        if exc.errno == errno.EACCES:
            raise RnnlabError(f"port {port} needs administrator rights; choose a port above 1023 with --port") from None
        raise RnnlabError(f"cannot listen on {host} port {port} ({exc.strerror or exc}); "
                          "check --host and --port") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def tune_for_serving() -> None:
    """One thread per reading: a reading is a 28-step sequence, far too small to split across cores, and
    the server already runs two readings at once (one per core). Extra torch or BLAS threads only spin
    against each other (BLAS's make the LSTM gate trace ~4× slower on this 2-core machine)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")


def serve_command(runs: list[str], host: str = "127.0.0.1", port: int = 8000,
                  log: Callable[[str], None] = print, export: str | None = None, force: bool = False) -> int:
    """Load the models, take the port, and serve until Ctrl-C (or SIGTERM). Returns the exit code (0).

    With `export`: no server; the page and the models' weights are written as a static folder (export.py)."""
    import uvicorn

    from rnnlab.serve.app import create_app
    from rnnlab.serve.catalog import resolve

    if export is not None:
        from rnnlab.serve.export import check_target, export_command

        if not export.strip():
            raise RnnlabError("--export is empty: give a folder for the page")
        check_target(Path(export), force)  # before loading anything: a wrong folder is said at once
        return export_command(resolve(runs, log), export, force, log)
    models = resolve(runs, log)
    sock = listen(host, port)
    try:
        tune_for_serving()
        app = create_app(models)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=15,
                                               timeout_graceful_shutdown=5))
        names = ", ".join(f"{m.name} ({m.run_dir})" for m in models)
        log(f"serving {names}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            log(f"listening on {host}: other machines on the network can reach this page")
        log(f"open {url_of(sock)} (Ctrl-C to stop)")
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then re-raises it: the normal way out
            log("stopped")
    finally:
        sock.close()
    return 0
