"""notebooks/lab.ipynb runs top to bottom on real MNIST (small settings), and is stored without outputs."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "lab.ipynb"


def test_notebook_is_stored_clean():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert len(code) >= 8
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    for call in ("load_data(", "save_sample_batch(", "build_model(", "compare(", "scores_per_step(",
                 "probabilities_per_step(", "lstm_gate_trace(", "write_report("):
        assert call in source, call


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch, mnist_dir):
    out = tmp_path / "runs"
    for name, value in {"RNNLAB_DATA": str(mnist_dir), "RNNLAB_OUT": str(out), "RNNLAB_EPOCHS": "1",
                        "RNNLAB_TRAIN_LIMIT": "1000", "RNNLAB_TEST_LIMIT": "300", "RNNLAB_HIDDEN_SIZE": "32",
                        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2"}.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    seconds = time.perf_counter() - started
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(pictures) >= 9  # batch, curves, 2 confusion matrices, reading, accuracy per row, gates, gradients ×2
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "rnn   test accuracy" in text and "lstm  test accuracy" in text
    assert "largest difference" in text
    assert "decades from step 28 back to step 1" in text and "lstm forget bias 1: 28 steps" in text  # why the LSTM
    for name in ("rnn", "lstm"):
        assert (out / name / "metrics.json").is_file()
    assert (out / "report.html").is_file() and (out / "reading.png").stat().st_size > 10_000
    print(f"the notebook took {seconds:.0f} s")  # speed is measured in benchmarks/, never asserted
