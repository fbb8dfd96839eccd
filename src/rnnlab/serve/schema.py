"""The JSON API's shapes, for FastAPI's /docs and /openapi.json (and for readers of app.py).

`/api/read` builds its answer by hand (see app.py); these models document it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    models: int = Field(description="how many models are loaded")


class ModelInfo(BaseModel):
    name: str = Field(description="the name used in /api/read answers and its ?model=")
    model: str = Field(description="the model kind: rnn, lstm, gru or scratch-lstm")
    dataset: str
    test_accuracy: float | None = Field(description="fraction of the test set right (null if the run has no metrics)")
    parameters: int
    run_dir: str = Field(description="the run folder the model was loaded from")
    view: str = Field(description="how the image is read: rows (28 steps of 28 pixels) or pixels (784 steps)")
    steps: int = Field(description="T, the steps per image")
    hidden_size: int
    num_layers: int
    lstm: bool = Field(description="whether /api/read?gates=1 gives its gates")
    classes: list[str]


class ModelList(BaseModel):
    models: list[ModelInfo]


class Ranked(BaseModel):
    model_config = {"populate_by_name": True}
    class_: int = Field(alias="class")
    label: str
    probability: float


class ModelReading(BaseModel):
    name: str
    model: str
    answer: int = Field(description="the class after the last row (the argmax of the last row of probabilities)")
    label: str = Field(description="the answer's class name")
    top3: list[Ranked]
    probabilities: list[list[float]] = Field(description="28 × C: the class probabilities after each row")
    steps: int
    gates: list[dict[str, list[list[float]]]] | None = Field(
        description="null, or with ?gates=1 for an LSTM one object per layer with i, f, o, g, c, each T × H")
    saliency: list[float] | None = Field(
        description="null, or with ?saliency=1 the 28 row norms of ∂ log p(answer) / ∂ the inputs (torch autograd)")


class Reading(BaseModel):
    image: list[list[int]] = Field(description="28 × 28 values 0-255: the picture as the models read it")
    models: list[ModelReading]


class Problem(BaseModel):
    detail: str = Field(description="one sentence saying what was wrong")


ERRORS = {status: {"model": Problem, "description": why} for status, why in (
    (400, "an empty or malformed body"),
    (404, "an unknown ?model="),
    (413, "a body over 1 MiB"),
    (415, "a content type that is not a picture, multipart or JSON"),
    (422, "a picture or pixel array that cannot be read as a digit (not PNG/JPEG, too many pixels, wrong shape, "
          "values outside 0-255, blank)"),
    (503, "busy: too many readings under way; try again"),
)}

_PIXELS = {"type": "array", "minItems": 28, "maxItems": 28,
           "items": {"type": "array", "minItems": 28, "maxItems": 28,
                     "items": {"type": "number", "minimum": 0, "maximum": 255}}}
READ_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "required": ["pixels"], "properties": {"pixels": _PIXELS}}},
}}}
