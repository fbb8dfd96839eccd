"""The matmul peak runs report against (rnnlab.training.flops): a positive finite number, measured once per
process and thread count, and timed by the CPU clock where other processes held the cores. No timing is
asserted: where the timing logic is checked, the clocks are fake."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch

from rnnlab.training import flops


@pytest.fixture
def measurements(monkeypatch):
    """The arguments of every GEMM timing `matmul_peak_gflops` does, from a clean cache."""
    timed, real = [], flops._best_seconds
    monkeypatch.setattr(flops, "_best_seconds", lambda *args: timed.append(args) or real(*args))
    flops.matmul_peak_gflops.cache_clear()
    yield timed
    flops.matmul_peak_gflops.cache_clear()


def test_peak_is_positive_finite_and_measured_once(measurements):
    peak = flops.matmul_peak_gflops("cpu", "fp32")  # as a run calls it: default size and repeats
    assert math.isfinite(peak) and peak > 0
    timings = len(measurements)
    assert timings >= 1
    assert flops.matmul_peak_gflops("cpu", torch.float32) == peak, "a dtype and its precision name are one key"
    assert len(measurements) == timings, "asked again in the same process, the peak was measured again"
    assert flops.matmul_peak_gflops.cache_info().hits == 1


def test_peak_is_measured_per_thread_count(measurements):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = flops.matmul_peak_gflops("cpu", "fp32", size=128, min_runs=2, budget_s=0.0)
        after_one = len(measurements)
        torch.set_num_threads(2)
        two = flops.matmul_peak_gflops("cpu", "fp32", size=128, min_runs=2, budget_s=0.0)
    finally:
        torch.set_num_threads(threads)
    assert len(measurements) > after_one, "another thread count must be measured, not read from the cache"
    assert {args[-1] for args in measurements} == {1, 2}
    assert all(math.isfinite(p) and p > 0 for p in (one, two))


class FakeClocks:
    """perf_counter, process_time and thread_time that move only when a fake GEMM run says so."""

    def __init__(self):
        self.wall = self.cpu = self.own = 0.0

    def gemm(self, *runs: tuple[float, float, float]):
        """A GEMM whose runs take (wall, process CPU, calling thread's CPU) seconds, these in turn."""
        turns = itertools.cycle(runs)

        def run():
            wall, cpu, own = next(turns)
            self.wall, self.cpu, self.own = self.wall + wall, self.cpu + cpu, self.own + own
        return run

    def module(self):
        return SimpleNamespace(perf_counter=lambda: self.wall, process_time=lambda: self.cpu,
                               thread_time=lambda: self.own)


@pytest.mark.parametrize("wall,cpu,own,threads,device,best", [
    (3.0, 2.0, 1.0, 2, "cpu", 1.0),  # 2 threads share the work, every run preempted: the CPU clock's 1 s counts
    (1.0, 2.0, 1.0, 2, "cpu", 1.0),  # the same, never preempted: wall and CPU clock agree
    (3.0, 1.0, 1.0, 2, "cpu", 1.0),  # a GEMM on one of two threads (bf16): its CPU second is not halved
    (3.0, 0.5, 0.5, 1, "cpu", 0.5),  # one thread, preempted
    (3.0, 2.0, 1.0, 2, "cuda", 3.0),  # a GPU: the wall clock only
])
def test_a_run_is_timed_by_the_cpu_clock_when_preempted(monkeypatch, wall, cpu, own, threads, device, best):
    clocks = FakeClocks()
    monkeypatch.setattr(flops, "time", clocks.module())
    monkeypatch.setattr(flops, "_sync", lambda device: None)
    assert flops._best_seconds(clocks.gemm((wall, cpu, own)), device, 5, 0.0, threads) == pytest.approx(best)


def test_a_cpu_reading_that_missed_work_does_not_count(monkeypatch):
    """Linux adds a running thread's CPU time at ticks: one run's reading can miss part of another thread's work.
    The median CPU time counts, not that run's."""
    clocks = FakeClocks()
    monkeypatch.setattr(flops, "time", clocks.module())
    runs = [(3.0, 2.0, 1.0), (3.0, 2.0, 1.0), (3.0, 1.2, 1.0)]  # the third missed 0.8 s of the other thread
    assert flops._best_seconds(clocks.gemm(*runs), "cpu", 9, 0.0, 2) == pytest.approx(1.0)


def test_without_a_fine_cpu_clock_the_wall_clock_counts(monkeypatch):
    clocks = FakeClocks()
    monkeypatch.setattr(flops, "time", clocks.module())
    monkeypatch.setattr(flops, "CPU_CLOCKS_USABLE", False)
    assert flops._best_seconds(clocks.gemm((3.0, 2.0, 1.0)), "cpu", 5, 0.0, 2) == pytest.approx(3.0)


def test_command_prints_the_peak(capsys, measurements):
    flops.main(["--threads", str(torch.get_num_threads())])
    line = capsys.readouterr().out
    assert line.startswith("matmul peak ") and "GFLOP/s (cpu, fp32" in line and "rough" in line
