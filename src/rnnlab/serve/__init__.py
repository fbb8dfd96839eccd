"""`rnnlab serve`: a web page to draw a digit and watch the networks read it row by row, and its JSON API.

catalog.py finds and loads the runs (once), reading.py computes one reading with the functions
`predict` and `report` use, app.py is the FastAPI app (`create_app(models)`), command.py starts it on
uvicorn, and static/ holds the page (plain HTML, CSS and JavaScript: no build step, no network).
"""

from rnnlab.serve.command import serve_command

__all__ = ["create_app", "load_models", "serve_command"]


def __getattr__(name: str):
    # create_app and load_models pull in FastAPI and torch: only when asked for (`rnnlab serve --help` stays fast).
    if name == "create_app":
        from rnnlab.serve.app import create_app

        return create_app
    if name == "load_models":
        from rnnlab.serve.catalog import load_models

        return load_models
    raise AttributeError(name)
