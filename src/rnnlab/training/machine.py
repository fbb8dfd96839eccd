"""What this machine can do, set once per process: memory reuse, native bf16, and the facts a result depends on.

A seeded run is reproducible bit for bit on the same kind of CPU (the kernel path torch picks: AVX2,
AVX-512, AMX), with the same number of threads and the same torch version; across those, results move
within the seed-to-seed spread. `environment()` records them in every run's `metrics.json`.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time

import torch

_MALLOC_TUNED = False
TORCH_THREADS = torch.get_num_threads()  # torch's own choice, before any run sets it


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed big blocks for reuse instead of returning them to the kernel.

    A CPU training step of nn.LSTM allocates and frees ~20 MB of buffers. With glibc's defaults each
    big one is a fresh mmap (or the top of the heap is trimmed and grown again), so every page is
    faulted in and zeroed anew: ~5,000 page faults and ~9 ms of kernel time per step on a 2-core EPYC,
    a third of the step. Raising the mmap threshold to its maximum (32 MiB) and the trim threshold
    (what MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ would do at start-up) lets the next step reuse
    the same memory. Results are unchanged; the process keeps its peak heap until it exits.
    Process-wide: call it once, at the entry point (the CLI does). Nothing happens off glibc or when
    either variable is set. Returns whether it is in effect.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>
    _MALLOC_TUNED = bool(mallopt(M_TRIM_THRESHOLD, 1 << 30)) & bool(mallopt(M_MMAP_THRESHOLD, 32 << 20))
    return _MALLOC_TUNED


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively. On a CPU that is what oneDNN reports (AVX-512 BF16 or
    AMX); without it oneDNN has no bf16 LSTM at all and everything else in bf16 is emulated, far slower
    than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_memory(config, what: str = "training this model") -> None:
    """Refuse, in one line, a model too large for this machine's free memory, before anything is allocated."""
    import psutil

    from rnnlab.data import input_shape
    from rnnlab.errors import RnnlabError
    from rnnlab.training.flops import train_memory_bytes

    steps, features = input_shape(config.view, config.steps)
    need = train_memory_bytes(config.model, steps, features, config.hidden_size, config.num_layers, config.batch_size)
    free = psutil.virtual_memory().available
    if need > free:
        raise RnnlabError(f"{what} needs about {need / 2**30:,.1f} GiB (--hidden-size {config.hidden_size}, "
                          f"--num-layers {config.num_layers}, --batch-size {config.batch_size}), more than the "
                          f"{free / 2**30:,.1f} GiB this machine has free; choose a smaller size")


def available_cores() -> int:
    """The cores this process may run on (its affinity): what `--jobs` divides and free-core threads count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cores(seconds: float = 0.25) -> float | None:
    """How many cores other work kept busy over the next `seconds` (Linux's /proc/stat), None elsewhere."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # (busy, all): idle and iowait are not busy

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def free_cores_threads() -> int | None:
    """Torch threads for a new CPU run when none were asked for: one per core that other work leaves free,
    at most torch's own choice (so on an idle machine, exactly that).

    Torch's default, one OpenMP thread per core, is the fastest on an idle machine, but its threads spin
    waiting for each other: beside a busy loop or a second training every parallel region waits for a
    thread that shares its core, and the run takes 4-5x its quiet time. With one thread per free core
    (at least one), measured over 0.25 s at start, the quiet speed is kept and the run beside a second
    training stays under 2x (docs/benchmarks.md, "Sharing the cores"). None (torch's own choice) when
    OMP_NUM_THREADS is set or the load cannot be read. The caller records the choice: a seeded result
    depends on the thread count, so a resumed run keeps it.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return None
    busy = busy_cores()
    if busy is None:
        return None
    return max(1, min(TORCH_THREADS, available_cores() - round(busy)))


def environment() -> dict:
    """The facts a seeded result depends on, for metrics.json."""
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16_cpu": native_bf16(torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
