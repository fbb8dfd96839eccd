"""docs/results.md's "Why the LSTM" (issue 20), for benchmarks/results.py (`make results`, step `why`).

The lab sheet's one reason for the LSTM: "Vanilla RNNs can be tough to train on long sequences due to
vanishing and exploding gradients". Measured here in three ways, all from rnnlab commands:
- the sweep: rnn, lstm and gru reading MNIST in 28, 56, 112 and 196 steps (`compare --steps`), 3 seeds;
- the gradient through time of seed 0's runs at 28 and 112 steps (`rnnlab gradients`), before and after training;
- the decay at the starting weights against the length, with the LSTM's forget bias at 0 (PyTorch's) and 1.
The 784-step point needs a GPU (scripts/gpu_why_lstm.sh); its figures appear when its folder is in --out.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHY = {"models": "rnn,lstm,gru", "seeds": "0-2", "lengths": [28, 56, 112, 196],
       "settings": ["--epochs", "2", "--clip-grad", "1", "--forget-bias", "1"]}
GRADIENT_LENGTHS = (28, 112)
# What others measured at 784 steps and beyond (the sources are named; the figures are theirs, not rerun here).
ANCHORS = [
    ("pixel MNIST (784 steps), 5 epochs", "1-layer RNN (SRN) / 1-layer LSTM", "23.0% / 87.7% (validation)",
     "TristanTorchet/LearningJAX, Flax/results.md (its table: SRN jit and LSTM, 1 layer, sMNIST)"),
    ("pixel MNIST (784 steps), tuned", "LSTM", "98.9%", "Gu, Goel, Ré 2022 (S4), table of sequential image "
     "classification"),
    ("the adding problem, 100-1000 steps", "LSTM", "solved", "Hochreiter & Schmidhuber 1997, Long Short-Term "
     "Memory, Neural Computation 9(8)"),
]
PICTURES = REPO / "docs" / "why-lstm"


def sweep_command(data_dir: str) -> str:
    return (f"rnnlab compare --models {WHY['models']} --steps {','.join(map(str, WHY['lengths']))} --seeds "
            f"{WHY['seeds']} {' '.join(WHY['settings'])} --threads 1 --data-dir {data_dir}")


def run_why(out: Path, data_dir: str, compare, rnnlab) -> None:
    """The sweep (resumed where it stopped), its report, and `rnnlab gradients` of seed 0 at 28 and 112 steps.
    `compare` and `rnnlab` are benchmarks/results.py's (one run at a time, one thread, logged)."""
    folder = out / "why-lstm"
    compare(folder / "sweep", WHY["models"], WHY["seeds"],
            [*WHY["settings"], "--steps", ",".join(map(str, WHY["lengths"]))], data_dir)
    rnnlab("report", folder / "sweep", log=folder / "report.log")
    for steps in GRADIENT_LENGTHS:
        runs = [folder / "sweep" / f"{m}-steps{steps}-seed0" for m in WHY["models"].split(",")]
        if all((r / "metrics.json").is_file() for r in runs):
            rnnlab("gradients", *runs, "--out", folder / f"gradients-{steps}", log=folder / "gradients.log")


def why_lstm(out: Path, data_dir: str, machine) -> list[str]:
    """The section's lines (`machine`: results.py's description of the CPU and the runs' environment)."""
    from rnnlab.summaries import find_runs, summarize_runs

    folder = out / "why-lstm"
    lines = ["## Why the LSTM: the gradient through time, and the gap as sequences grow", "",
             "The lab sheet's reason for the LSTM: \"vanilla RNNs can be tough to train on long sequences due to "
             "vanishing and exploding gradients\". At the sheet's 28 steps the RNN still does well; here every "
             "model reads the same pictures in longer sequences of shorter pieces (`--steps T`: T steps of 784/T "
             "pixels, row-major). Recipe: 2 epochs on all 60,000 training images, Adam 1e-3, batch 64, the "
             "gradient norm clipped at 1 (`--clip-grad 1`), the LSTM's forget-gate bias at 1 (`--forget-bias 1`, "
             "Jozefowicz et al. 2015), one thread, seeds 0-2; accuracy on the 10,000 test images.", "",
             f"`{sweep_command(data_dir)}`", ""]
    try:
        summary = summarize_runs(find_runs([folder / "sweep"], log=lambda _: None), "steps")
    except Exception as exc:  # nothing finished yet
        return lines + [f"**Not measured yet** ({exc}). Run `make results` (it resumes where it stopped).", ""]
    lines += sweep_table(summary) + [""]
    lines += [machine([Path(r["run_dir"]) for row in summary.values() for r in row["runs"]]), ""]
    lines += pictures(folder) + decay_table(folder, data_dir) + gpu_point(out) + anchors()
    return lines


def sweep_table(summary: dict) -> list[str]:
    """Per length: each model's mean ± std over its seeds, and the LSTM's paired lead over the RNN."""
    from rnnlab.report.sweep import by_length
    from rnnlab.stats import mean_std

    table = by_length(summary)
    models = list(dict.fromkeys(m for row in table.values() for m in row))
    lines = ["| steps × pixels | " + " | ".join(models) + " | lstm − rnn, paired (95% CI) |",
             "|---|" + "---:|" * (len(models) + 1)]
    for steps, row in table.items():
        cells = [f"{mean_std(row[m]['test_accuracy'], row[m].get('std'))} ({row[m]['n']})" if m in row else "–"
                 for m in models]
        pair = next((r["versus"].get(n) for n, r in summary.items() if r["model"] == "lstm" and r["value"] == steps
                     for n in r["versus"] if summary[n]["model"] == "rnn" and summary[n]["value"] == steps), None)
        lead = (f"{100 * pair['difference']:+.2f} ({100 * pair['ci95'][0]:+.2f} to {100 * pair['ci95'][1]:+.2f})"
                if pair and pair.get("ci95") else "–")
        lines.append(f"| {steps} × {784 // steps} | " + " | ".join(cells) + f" | {lead} |")
    return lines + ["", "Each cell: test accuracy, mean ± std over the seeds (their number in brackets). The last "
                    "column is the LSTM's lead in points, seed by seed, with its 95% bootstrap interval (rough with "
                    "3 seeds)."]


def pictures(folder: Path) -> list[str]:
    """The sweep report's two plots and the gradient plots, copied into docs/why-lstm/ and shown."""
    shown = [(folder / "sweep" / "sweep_accuracy.png", "accuracy.png", "Test accuracy against the sequence length "
              "(mean over 3 seeds, 95% CI): from `rnnlab report` on the sweep's folder."),
             (folder / "sweep" / "sweep_decay.png", "decay.png", "How many decades the gradient of the answer "
              "falls from the last step back to the first, at the starting weights (seed 0), against the length.")]
    shown += [(folder / f"gradients-{t}" / "gradients.png", f"gradients-{t}.png", f"Median ‖∂L/∂x_t‖ against the "
               f"step at {t} steps, seed 0: dashed at the starting weights, solid after training (`rnnlab gradients "
               f"rnn-steps{t}-seed0 lstm-steps{t}-seed0 gru-steps{t}-seed0`).") for t in GRADIENT_LENGTHS]
    lines = []
    for source, name, caption in shown:
        if source.is_file():
            PICTURES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, PICTURES / name)
            lines += [f"![{caption}](why-lstm/{name})", "", f"*{caption}*", ""]
    return lines


def decay_table(folder: Path, data_dir: str) -> list[str]:
    """Decades of fall at the starting weights per length, with the LSTM's forget bias at 0 and at 1, and after
    training where `rnnlab gradients` measured seed 0."""
    from rnnlab.config import Config
    from rnnlab.report.sweep import decay_at_start

    columns = [("rnn", 0.0), ("lstm", 0.0), ("lstm", 1.0), ("gru", 0.0)]
    trained = {t: {r["model"]: r["trained"]["decay"]["x"] for r in json.loads(p.read_text())["runs"]}
               for t in GRADIENT_LENGTHS if (p := folder / f"gradients-{t}" / "gradients.json").is_file()}
    datasets: dict = {}
    lines = ["Decay of ‖∂L/∂x_t‖ from the last step back to the first, in decades (log10 of the ratio of medians "
             "over the first 256 test images, in float64), at the weights seed 0 starts from, and after training "
             "(seed 0's sweep runs, from `rnnlab gradients`):", "",
             "| steps | rnn | lstm, forget bias 0 (PyTorch's) | lstm, forget bias 1 | gru | after training: rnn / lstm "
             "(bias 1) / gru |", "|---|---:|---:|---:|---:|---:|"]
    for steps in WHY["lengths"]:
        cells = [decay_at_start(Config(model=m, forget_bias=b, steps=steps, seed=0, data_dir=data_dir), 256,
                                datasets, log=lambda _: None) for m, b in columns]
        after = trained.get(steps)
        lines.append(f"| {steps} | " + " | ".join(_decades(c) for c in cells) + " | " +
                     (" / ".join(_decades(after.get(m)) for m in ("rnn", "lstm", "gru")) if after else "–") + " |")
    return lines + ["", "With PyTorch's forget bias of 0 the untrained LSTM's gradient fades almost as fast as the "
                    "RNN's; with a bias of 1 its forget gate starts mostly open and the gradient reaches far further "
                    "back. In float32 the first steps' gradients at 112 steps and beyond underflow to exactly 0, "
                    "which is why these are computed in float64.", ""]


def _decades(value) -> str:
    return "–" if value is None else f"{value:.1f}" if math.isfinite(value) else "∞ (0 in float64)"


GPU_RECIPES = [("why-lstm-784", "the sweep's recipe (2 epochs; 2-layer LSTM and GRU, 1-layer RNN)", ""),
               ("why-lstm-784-1layer", "one layer each, 5 epochs (the shape of the published 5-epoch anchor below)",
                "NAME=why-lstm-784-1layer ... --num-layers 1 --epochs 5")]


def gpu_point(out: Path) -> list[str]:
    """The 784-step point: the GPU command, and its figures for each recipe whose summary is in --out."""
    from rnnlab.stats import mean_std

    lines = ["### 784 steps (pixel MNIST), on a GPU", "",
             "One pixel a step is too long for this CPU (see the 784-step views above). The same recipe at 784 "
             "steps, on a machine with an NVIDIA GPU: `bash scripts/gpu_why_lstm.sh MNIST_DIR`, which runs", "",
             "`rnnlab compare --models rnn,lstm,gru --steps 784 --seeds 0-2 " + " ".join(WHY["settings"]) +
             " --device cuda --jobs 3 --data-dir MNIST_DIR --out runs/results/why-lstm-784`", "",
             "then `rnnlab summarize` and `rnnlab gradients` (64 images) on seed 0; options after the two "
             "arguments go to compare.", ""]
    for name, what, options in GPU_RECIPES:
        path = out / f"{name}-summary" / "summary.json"
        if not path.is_file():
            lines += [f"{what[0].upper() + what[1:]}: not measured from this folder (no GPU run's results in it).", ""]
            continue
        summary = json.loads(path.read_text())
        machine = (out / f"{name}-summary" / "machine.txt")
        lines += [f"{what[0].upper() + what[1:]}" + (f" (`{options}`)" if options else "") + ", measured on "
                  f"{machine.read_text().strip() if machine.is_file() else 'a GPU machine'}:", "",
                  "| model | seeds | test accuracy, mean ± std | each seed | train time per run |",
                  "|---|---:|---:|---|---:|"]
        lines += [f"| {n} | {row['n']} | {mean_std(row['test_accuracy'], row.get('std'))} | "
                  f"{', '.join(f'{100 * a:.2f}%' for a in row['test_accuracies'])} | {row['train_seconds']:.0f} s |"
                  for n, row in summary.items()]
        gradients = out / f"{name}-gradients" / "gradients.json"
        if gradients.is_file():
            runs = json.loads(gradients.read_text())["runs"]
            lines += ["", "Decay from step 784 back to step 1, seed 0, 64 test images (starting → trained weights): " +
                      "; ".join(f"{r['name']} {_decades(r['initial']['decay']['x'])} → "
                                f"{_decades(r['trained']['decay']['x'])}" for r in runs) + " decades."]
        lines.append("")
    return lines


def anchors() -> list[str]:
    return ["### Published anchors for long sequences", "", "| task | model | reported | source |", "|---|---|---:|---|",
            *[f"| {task} | {model} | {value} | {source} |" for task, model, value, source in ANCHORS], ""]
