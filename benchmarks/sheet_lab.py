"""The lab sheet's own code, run faithfully: the baseline of `benchmarks/lab_vs_sheet.py`.

Everything that does work is the sheet's (/work/shared/seed/lab-sheet.md), verbatim:
torchvision MNIST with ToTensor() + Normalize((0.5,), (0.5,)) applied per image, DataLoader(batch_size=64,
shuffle=True) for training and (batch_size=64, shuffle=False) for testing, `inputs.view(-1, 28, 28)`,
`loss.item()` and the accuracy every step, the RNN_Model and LSTM_Model classes, `train()` and `evaluate()`.

The only differences, none of which changes the work done per step:
- `torch.manual_seed(seed)` right before each model is built (the notebook never seeds), so the model
  starts from the same weights as `rnnlab` with the same seed (rnnlab seeds before each model too);
- the files are read from `--data-dir` (torchvision cannot download here): the four IDX files are
  gunzipped once into a cache folder laid out as torchvision expects (`<root>/MNIST/raw/`), and
  `datasets.MNIST(root, download=False)` reads them exactly as after a download;
- `--train-limit/--test-limit N` wrap the datasets in `Subset(range(N))` (the first N images, as
  rnnlab's `--train-limit/--test-limit`), for short runs;
- `train()`/`evaluate()` also return what they print, and the script times each phase and writes
  one JSON object (`--json`).

    python benchmarks/sheet_lab.py --models rnn,lstm --epochs 5 --data-dir ../shared/data/mnist --json out.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()  # before torch is imported: the process's own clock

import torch  # noqa: E402
import numpy as np  # noqa: E402,F401  (the sheet imports it)
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

IMPORTED = time.perf_counter()

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def torchvision_root(data_dir: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """A folder `root` with `root/MNIST/raw/<the four uncompressed IDX files>`, for `datasets.MNIST(root)`.

    If `data_dir` already has that layout it is used as is; otherwise the files of `data_dir` (`.gz` or
    raw) are uncompressed once into `cache` (default: `$TMPDIR/rnnlab-sheet-mnist`), outside the repo.
    """
    data_dir = Path(data_dir)
    if all((data_dir / "MNIST" / "raw" / name).is_file() for name in RAW_FILES):
        return data_dir
    root = Path(cache or Path(tempfile.gettempdir()) / "rnnlab-sheet-mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        target = raw / name
        if target.is_file():
            continue
        source = data_dir / name
        tmp = raw / f".{name}.{os.getpid()}.part"
        if source.is_file():
            shutil.copyfile(source, tmp)
        elif (data_dir / f"{name}.gz").is_file():
            with gzip.open(data_dir / f"{name}.gz", "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            raise FileNotFoundError(f"{data_dir} has no {name}(.gz)")
        os.replace(tmp, target)  # atomic: concurrent runs never see a half-written file
    return root


# ---------------------------------------------------------------------------------------------
# The sheet, verbatim.
# ---------------------------------------------------------------------------------------------

# Transform to normalize the data
transform = transforms.Compose([
    transforms.ToTensor(),
    transforms.Normalize((0.5,), (0.5,))  # Normalize to [0, 1] range
])


class RNN_Model(nn.Module):
    def __init__(self, input_size=28, hidden_size=128, num_classes=10):
        super(RNN_Model, self).__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        out = self.fc(out[:, -1, :])  # Use the output of the last time-step
        return out


class LSTM_Model(nn.Module):
    def __init__(self, input_size=28, hidden_size=128, num_layers=2, num_classes=10):
        super(LSTM_Model, self).__init__()

        # LSTM layer
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)

        # Fully connected layer
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        # x: (batch_size, seq_length, input_size) -> (batch_size, 28, 28)

        # LSTM expects input shape (batch, seq_length, input_size)
        lstm_out, (hn, cn) = self.lstm(x)

        # Use the last hidden state to predict the class
        out = self.fc(hn[-1])
        return out


def train(model, trainloader, criterion, optimizer, num_epochs=5):
    model.train()
    history = []  # (added: what the sheet prints, returned)
    for epoch in range(num_epochs):
        epoch_started = time.perf_counter()  # (added)
        running_loss = 0.0
        correct = 0
        total = 0
        for i, (inputs, labels) in enumerate(trainloader):
            # Flatten the input for RNN/LSTM (batch_size, seq_len, input_size)
            inputs = inputs.view(-1, 28, 28)  # Reshaping for RNN or LSTM input
            outputs = model(inputs)
            loss = criterion(outputs, labels)

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            running_loss += loss.item()

            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()

        print(f'Epoch [{epoch + 1}/{num_epochs}], Loss: {running_loss/len(trainloader):.4f}, Accuracy: {100 * correct / total:.2f}%')
        history.append({"epoch": epoch + 1, "train_loss": running_loss / len(trainloader),
                        "train_accuracy": correct / total, "seconds": time.perf_counter() - epoch_started})
    return history


def evaluate(model, testloader):
    model.eval()
    correct = 0
    total = 0
    with torch.no_grad():
        for inputs, labels in testloader:
            inputs = inputs.view(-1, 28, 28)
            outputs = model(inputs)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()

    print(f'Test Accuracy: {100 * correct / total:.2f}%')
    return correct / total  # (added)


SHEET_MODELS = {"rnn": RNN_Model, "lstm": LSTM_Model}


# ---------------------------------------------------------------------------------------------


def load_datasets(data_dir, train_limit=None, test_limit=None, cache=None):
    """The sheet's `trainset`/`testset` (torchvision MNIST + the sheet's transform), optionally cut."""
    root = str(torchvision_root(data_dir, cache))
    trainset = datasets.MNIST(root=root, train=True, download=False, transform=transform)
    testset = datasets.MNIST(root=root, train=False, download=False, transform=transform)
    if train_limit:
        trainset = Subset(trainset, range(min(train_limit, len(trainset))))
    if test_limit:
        testset = Subset(testset, range(min(test_limit, len(testset))))
    return trainset, testset


def run_lab(models, epochs, data_dir, seed=0, train_limit=None, test_limit=None, cache=None) -> dict:
    lab_started = time.perf_counter()
    trainset, testset = load_datasets(data_dir, train_limit, test_limit, cache)
    # DataLoader for batching
    trainloader = DataLoader(trainset, batch_size=64, shuffle=True)
    testloader = DataLoader(testset, batch_size=64, shuffle=False)
    results = {"data_seconds": time.perf_counter() - lab_started, "models": {}}
    criterion = nn.CrossEntropyLoss()
    for name in models:
        print(f"== {name} (sheet) ==", flush=True)
        torch.manual_seed(seed)
        model = SHEET_MODELS[name]()
        optimizer = optim.Adam(model.parameters(), lr=0.001)
        started = time.perf_counter()
        history = train(model, trainloader, criterion, optimizer, num_epochs=epochs)
        trained = time.perf_counter()
        accuracy = evaluate(model, testloader)
        results["models"][name] = {"test_accuracy": accuracy, "epochs": history,
                                   "train_seconds": trained - started, "eval_seconds": time.perf_counter() - trained}
    results["lab_seconds"] = time.perf_counter() - lab_started
    results["lab_end_monotonic"] = time.monotonic()
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="rnn,lstm")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--cache", default=None, help="folder for the uncompressed IDX files")
    p.add_argument("--json", default=None, help="write the timings and accuracies here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = run_lab(models, args.epochs, args.data_dir, args.seed, args.train_limit, args.test_limit, args.cache)
    results.update(side="sheet", threads=torch.get_num_threads(), import_seconds=IMPORTED - STARTED,
                   process_seconds=time.perf_counter() - STARTED)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
