"""The whole lab, side by side: the sheet's own code against `rnnlab compare`, same models, seed, epochs, data.

Each side runs in its own Python process (so neither inherits the other's threads, allocator or caches),
one after the other, alternating which goes first from one repeat to the next:

- sheet:  `benchmarks/sheet_lab.py`, the lab sheet's training loop reproduced faithfully (torchvision
          MNIST, per-image ToTensor + Normalize, DataLoader(batch_size=64, shuffle=True), `loss.item()` and
          accuracy every step, test batches of 64, the sheet's RNN_Model / LSTM_Model verbatim);
- rnnlab: `rnnlab.lab.compare(...)` in a child process (this script with `--side rnnlab`), once per
          `--precision` asked for.

Both seed with `torch.manual_seed(seed)` before building each model, so both start from the same weights.
The time compared is the lab's wall time inside each process: data loading + every model's training +
every evaluation (the process's own start-up and imports are shown apart, and they are about equal).

After its lab, the rnnlab process also measures the training loop's overhead over the pure compute
(`--overhead-steps`): `fit()` over K batches against the bare model step (forward, loss, backward, Adam)
on the very same K batches, alternated `--overhead-rounds` times in one process.

    python benchmarks/lab_vs_sheet.py                                  # the full lab, fp32, once
    python benchmarks/lab_vs_sheet.py --precision fp32 bf16 --repeats 2
    python benchmarks/lab_vs_sheet.py --epochs 1 --train-limit 6400 --test-limit 2000   # a few minutes
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


# ------------------------------------------------------------------------------------------------
# The rnnlab side (runs in its own process: `--side rnnlab`)
# ------------------------------------------------------------------------------------------------

def measure_overhead(config, dataset, steps: int, rounds: int) -> dict:
    """fit() on `steps` batches vs the bare model step on the same batches, alternated `rounds` times."""
    import torch
    import torch.nn.functional as F

    from rnnlab.data import SequenceBatches
    from rnnlab.data import sequence_inputs
    from rnnlab.models import new_model
    from rnnlab.training.distributed import seed_everything
    from rnnlab.training.evaluate import autocast
    from rnnlab.training.fit import fit

    n = min(steps * config.batch_size, len(dataset.train.labels))
    inputs = sequence_inputs(config, dataset.train.images[:n])
    batches = SequenceBatches(inputs, dataset.train.labels[:n], config.batch_size, shuffle=True, seed=config.seed)
    device = torch.device("cpu")
    seed_everything(config.seed)
    start_model = new_model(config)
    fixed = [(x.clone(), y.clone()) for x, y in batches.epoch(0)]  # the batches fit() will draw in epoch 0

    def fresh():
        model = copy.deepcopy(start_model)
        return model, torch.optim.Adam(model.parameters(), lr=config.lr)

    def pure() -> float:
        model, optimizer = fresh()
        model.train()
        started = time.perf_counter()
        for x, y in fixed:
            with autocast(device, config.precision):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - started

    def lab() -> float:
        model, optimizer = fresh()
        progress = fit(model, optimizer, batches, epochs=1, precision=config.precision, quiet=True, log=lambda _: None)
        return progress.epochs[0]["seconds"]

    pure()  # warm-up (allocator, oneDNN primitive caches)
    times = {"fit": [], "pure": []}
    for r in range(rounds):
        for kind in (("fit", "pure") if r % 2 == 0 else ("pure", "fit")):
            times[kind].append(lab() if kind == "fit" else pure())
    ratios = [f / p for f, p in zip(times["fit"], times["pure"])]
    return {"steps": len(fixed), "fit_seconds": times["fit"], "pure_seconds": times["pure"],
            "ratio_median": statistics.median(ratios),
            "pure_seconds_per_step": statistics.median(times["pure"]) / len(fixed)}


def rnnlab_side(args) -> dict:
    t0 = time.perf_counter()
    import torch

    from rnnlab.config import Config
    from rnnlab.data import load_data
    from rnnlab.lab import compare
    from rnnlab.training.machine import keep_freed_memory

    keep_freed_memory()  # what the rnnlab command does at its entry point
    imported = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models.split(",")
    settings = dict(data_dir=str(args.data_dir), epochs=args.epochs, seed=args.seed, device="cpu",
                    precision=args.precision, train_limit=args.train_limit, test_limit=args.test_limit)
    config = Config(model=models[0], **settings)
    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as out:
        lab_started = time.perf_counter()
        # jobs=1: one process trains the models in turn, as the sheet's code does
        compare(models, settings, Path(out) / "lab", jobs=1, quiet=True, log=lambda m: print(m, flush=True))
        lab_seconds = time.perf_counter() - lab_started
        lab_end = time.monotonic()
        result = {"side": "rnnlab", "precision": args.precision, "threads": torch.get_num_threads(),
                  "import_seconds": imported - t0, "lab_seconds": lab_seconds, "lab_end_monotonic": lab_end,
                  "models": {}}
        for name in models:
            metrics = json.loads((Path(out) / "lab" / name / "metrics.json").read_text())
            result["models"][name] = {k: metrics[k] for k in ("test_accuracy", "epochs", "train_seconds",
                                                               "eval_seconds", "matmul_peak_gflops")}
    if args.overhead_steps and args.overhead_models:
        from dataclasses import replace

        dataset = load_data(config, announce=lambda _: None)
        for name in args.overhead_models.split(","):
            if name in result["models"]:
                overhead = measure_overhead(replace(config, model=name, num_layers=None), dataset,
                                            args.overhead_steps, args.overhead_rounds)
                entry = result["models"][name]
                entry["overhead"] = overhead
                lab_epochs = sorted(e["seconds"] for e in entry["epochs"])
                steps = -(-len(dataset.train.labels) // config.batch_size)
                entry["epoch_over_compute"] = statistics.median(lab_epochs) / (overhead["pure_seconds_per_step"] * steps)
    from rnnlab.training.flops import matmul_peak_gflops

    result["matmul_peak_gflops_precision"] = matmul_peak_gflops("cpu", args.precision)
    result["process_seconds"] = time.perf_counter() - t0
    return result


# ------------------------------------------------------------------------------------------------
# The orchestrator
# ------------------------------------------------------------------------------------------------

def child_env(threads: int | None) -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


def run_child(kind: str, args, log_dir: Path, index: int) -> dict:
    json_path = log_dir / f"{index:02d}-{kind}.json"
    common = ["--models", args.models, "--epochs", str(args.epochs), "--data-dir", str(args.data_dir),
              "--seed", str(args.seed), "--json", str(json_path)]
    for flag, value in (("--train-limit", args.train_limit), ("--test-limit", args.test_limit), ("--threads", args.threads)):
        if value:
            common += [flag, str(value)]
    if kind == "sheet":
        cmd = [sys.executable, str(HERE / "sheet_lab.py"), *common]
    else:
        precision = kind.split("-", 1)[1]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--side", "rnnlab", "--precision", precision, *common,
               "--overhead-models", args.overhead_models, "--overhead-steps", str(args.overhead_steps),
               "--overhead-rounds", str(args.overhead_rounds)]
    log_path = log_dir / f"{index:02d}-{kind}.log"
    started, spawned = time.perf_counter(), time.monotonic()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(args.threads), cwd=REPO).returncode
    wall = time.perf_counter() - started
    if rc != 0:
        sys.stderr.write(log_path.read_text()[-3000:])
        raise SystemExit(f"{kind} failed with exit code {rc} (log: {log_path})")
    result = json.loads(json_path.read_text())
    result["process_wall_seconds"] = wall
    # Start of the process (interpreter, imports) to the end of its lab: what running the lab costs a user.
    result["start_to_lab_end_seconds"] = result["lab_end_monotonic"] - spawned
    return result


def fmt_pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def summarise(runs: list[dict], kinds: list[str], models: list[str], accuracy_bound: float) -> tuple[str, dict]:
    by_kind = {k: [r for r in runs if r["kind"] == k] for k in kinds}
    sheet = by_kind["sheet"]
    lines, summary = [], {"kinds": {}}
    head = f"{'side':<14}{'lab wall s':>11}{'start→end s':>12}" + "".join(f"{m + ' train s':>14}{m + ' acc':>11}" for m in models)
    lines += [head, "-" * len(head)]
    for kind in kinds:
        rs = by_kind[kind]
        lab = statistics.median(r["lab_seconds"] for r in rs)
        proc = statistics.median(r["start_to_lab_end_seconds"] for r in rs)
        row = f"{kind:<14}{lab:>11.1f}{proc:>12.1f}"
        entry = {"lab_seconds": [r["lab_seconds"] for r in rs],
                 "start_to_lab_end_seconds": [r["start_to_lab_end_seconds"] for r in rs],
                 "models": {}}
        for m in models:
            train = statistics.median(r["models"][m]["train_seconds"] for r in rs)
            acc = statistics.median(r["models"][m]["test_accuracy"] for r in rs)
            row += f"{train:>14.1f}{fmt_pct(acc):>11}"
            entry["models"][m] = {"train_seconds": [r["models"][m]["train_seconds"] for r in rs],
                                  "test_accuracy": [r["models"][m]["test_accuracy"] for r in rs],
                                  "epoch_seconds": [[e["seconds"] for e in r["models"][m]["epochs"]] for r in rs]}
            if "gflops" in rs[0]["models"][m]["epochs"][0]:
                entry["models"][m]["gflops"] = [[e["gflops"] for e in r["models"][m]["epochs"]] for r in rs]
                entry["models"][m]["matmul_peak_gflops"] = [r["models"][m]["matmul_peak_gflops"] for r in rs]
            for r in rs:
                if "overhead" in r["models"][m]:
                    entry["models"][m].setdefault("overhead", []).append(r["models"][m]["overhead"])
                    entry["models"][m].setdefault("epoch_over_compute", []).append(r["models"][m]["epoch_over_compute"])
        lines.append(row)
        summary["kinds"][kind] = entry
    lines.append("")
    verdicts = {}
    for kind in kinds[1:]:
        ratios = [r["lab_seconds"] / s["lab_seconds"] for r, s in zip(by_kind[kind], sheet)]
        ratio = statistics.median(ratios)
        whole = statistics.median(r["start_to_lab_end_seconds"] / s["start_to_lab_end_seconds"]
                                  for r, s in zip(by_kind[kind], sheet))
        speedup = 1 / ratio
        acc_ok = all(statistics.median(r["models"][m]["test_accuracy"] for r in by_kind[kind])
                     >= statistics.median(s["models"][m]["test_accuracy"] for s in sheet) - accuracy_bound for m in models)
        verdicts[kind] = {"ratios": ratios, "ratio_median": ratio, "accuracy_within_bound": acc_ok}
        deltas = ", ".join(
            f"{m} {100 * (statistics.median(r['models'][m]['test_accuracy'] for r in by_kind[kind]) - statistics.median(s['models'][m]['test_accuracy'] for s in sheet)):+.2f} pts"
            for m in models)
        lines.append(f"{kind} / sheet: wall-time ratio {ratio:.3f} (median of {', '.join(f'{x:.3f}' for x in ratios)}), "
                     f"{speedup:.2f}x faster; accuracy vs sheet: {deltas} "
                     f"({'within' if acc_ok else 'OUTSIDE'} {100 * accuracy_bound:.1f} pts); "
                     f"process start to lab end: ratio {whole:.3f}")
        verdicts[kind]["start_to_lab_end_ratio_median"] = whole
        for m in models:
            e = summary["kinds"][kind]["models"][m]
            if "overhead" in e:
                oh = statistics.median(o["ratio_median"] for o in e["overhead"])
                ec = statistics.median(e["epoch_over_compute"])
                lines.append(f"  {kind} {m}: fit()/pure compute on the same {e['overhead'][0]['steps']} batches {oh:.3f}; "
                             f"lab epoch / (pure step x steps) {ec:.3f}")
            if "gflops" in e:
                best = statistics.median(max(g) for g in e["gflops"])
                peak = statistics.median(e["matmul_peak_gflops"])
                peak_p = statistics.median(r.get("matmul_peak_gflops_precision", peak) for r in by_kind[kind])
                lines.append(f"  {kind} {m}: {best:.1f} GFLOP/s (best epoch); matmul peak {peak_p:.0f} GFLOP/s in "
                             f"{kind.split('-')[-1]} ({100 * best / peak_p:.0f}%; the run's metrics.json says {peak:.0f})")
    summary["verdicts"] = verdicts
    return "\n".join(lines), summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="The lab sheet's code vs rnnlab compare, side by side.")
    p.add_argument("--side", choices=("orchestrate", "rnnlab"), default="orchestrate", help=argparse.SUPPRESS)
    p.add_argument("--models", default="rnn,lstm")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"),
                   help="rnnlab precision(s); each is one more rnnlab run per repeat (the sheet is fp32)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=None, help="first N training images only (short runs)")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in both sides (default: torch's own); also sets OMP/MKL_NUM_THREADS")
    p.add_argument("--overhead-models", default="lstm", help="models whose fit()/compute ratio to measure ('' for none)")
    p.add_argument("--overhead-steps", type=int, default=200)
    p.add_argument("--overhead-rounds", type=int, default=3)
    p.add_argument("--accuracy-bound", type=float, default=0.003, help="allowed accuracy drop vs the sheet (fraction)")
    p.add_argument("--out", type=Path, default=None, help="folder for logs and results.json (default: a temp folder)")
    p.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.side == "rnnlab":
        args.precision = args.precision[0]
        result = rnnlab_side(args)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    import torch

    from rnnlab.training.machine import native_bf16

    if "bf16" in args.precision and not native_bf16(torch.device("cpu")):  # AVX2-only: no bf16 LSTM in oneDNN
        print("lab vs sheet: this CPU has no native bf16: bf16 left out", flush=True)
        args.precision = [p for p in args.precision if p != "bf16"]
    kinds = ["sheet"] + [f"rnnlab-{p}" for p in args.precision]
    out = args.out or Path(tempfile.mkdtemp(prefix="lab-vs-sheet-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"lab vs sheet: models {models}, {args.epochs} epochs, seed {args.seed}, data {args.data_dir}, "
          f"train limit {args.train_limit}, test limit {args.test_limit}, threads {args.threads or 'default'}, "
          f"{args.repeats} repeat(s); logs in {out}", flush=True)
    runs, index = [], 0
    for r in range(args.repeats):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            index += 1
            result = run_child(kind, args, out, index)
            result.update(kind=kind, repeat=r)
            runs.append(result)
            accs = ", ".join(f"{m} {fmt_pct(result['models'][m]['test_accuracy'])}" for m in models)
            print(f"  repeat {r + 1} {kind:<12} lab {result['lab_seconds']:7.1f} s  process {result['process_wall_seconds']:7.1f} s  {accs}",
                  flush=True)
    table, summary = summarise(runs, kinds, models, args.accuracy_bound)
    print()
    print(table)
    summary.update(args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, runs=runs)
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
