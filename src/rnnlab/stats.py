"""Seeds → what can be said: mean, std, a bootstrap confidence interval, paired differences, one sentence.

A handful of seeds is what a lab can afford, so the statistics are those made for few runs (as in
google-research's rliable): the 95% interval of a mean is a percentile bootstrap
(`scipy.stats.bootstrap`, 10,000 resamples, a fixed generator so the same numbers give the same interval);
two models are compared seed by seed (the same seed means the same initial-weight draw and batch order,
so the paired difference removes much of the seed's effect), and the probability of improvement
P(X > Y) is taken over every pair of runs (the Mann-Whitney U statistic over n·m, ties counting half).
With one seed there is no interval and the sentence says so. Accuracies are fractions; sentences speak
in percentage points.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values) -> list[float] | None:
    """The 95% percentile-bootstrap interval [low, high] of the mean of `values`; None for fewer than 2."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    if np.all(values == values[0]):  # every resample has the same mean (scipy would warn of a degenerate case)
        return [float(values[0]), float(values[0])]
    result = scipy_stats.bootstrap((values,), np.mean, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                                   method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def describe(values) -> dict:
    """n, mean, std (n−1 in the denominator; None for one value), min, max and the 95% CI of the mean."""
    values = [float(v) for v in values]
    return {"n": len(values), "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1
            else None, "min": min(values), "max": max(values), "ci95": bootstrap_ci(values)}


def probability_of_improvement(x, y) -> float:
    """P(X > Y) + ½·P(X = Y) over all pairs of one run of x and one of y (rliable's, for one task)."""
    x, y = np.asarray(x, dtype=np.float64)[:, None], np.asarray(y, dtype=np.float64)[None, :]
    return float(np.mean((x > y) + 0.5 * (x == y)))


def paired_difference(x: dict, y: dict) -> dict:
    """x − y over the seeds both have (`x`, `y`: seed → accuracy): mean, 95% CI, wins, and P(X > Y)."""
    seeds = sorted(set(x) & set(y))
    differences = [x[s] - y[s] for s in seeds]
    return {"seeds": seeds, "n": len(seeds), "difference": float(np.mean(differences)) if seeds else None,
            "ci95": bootstrap_ci(differences), "wins": sum(d > 0 for d in differences),
            "losses": sum(d < 0 for d in differences),
            "probability_of_improvement": probability_of_improvement(list(x.values()), list(y.values()))}


def points(fraction: float) -> str:
    return f"{100 * fraction:.2f}"


def sentence(a: str, b: str, pair: dict) -> str:
    """What `pair` (paired_difference of a − b) means, in one plain sentence."""
    n, d = pair["n"], pair["difference"]
    if n == 0:
        return f"{a} and {b} share no seed, so they cannot be compared seed by seed: run them with the same --seeds"
    winner, loser, d = (a, b, d) if d >= 0 else (b, a, -d)
    if n == 1:
        seed = pair["seeds"][0]
        if d == 0:
            return f"{a} and {b} tie on seed {seed}; with one seed no interval can be given (run --seeds 0-4)"
        return (f"{winner} beats {loser} by {points(d)} points on seed {seed}; with one seed no interval can be "
                f"given, and one seed's difference can be noise (run --seeds 0-4)")
    low, high = pair["ci95"] if winner == a else [-pair["ci95"][1], -pair["ci95"][0]]
    ahead = pair["wins"] if winner == a else pair["losses"]
    interval = f"95% CI {points(low)} to {points(high)}" + (f", rough with {n} seeds" if n < 5 else "")
    if low > 0:
        return f"{winner} beats {loser} by {points(d)} points ({interval}), in {ahead} of {n} seeds"
    return (f"{a} and {b} cannot be told apart: {winner} is ahead by {points(d)} points on average ({interval}, "
            f"which includes no difference), in {ahead} of {n} seeds")


def compare_models(accuracies: dict[str, dict[int, float]], related=None) -> dict[str, dict]:
    """Per model its `describe` plus, against each other model, the paired difference and the sentence.

    `accuracies`: model → (seed → test accuracy). Returns model → {"seeds", "test_accuracies", the
    describe() fields, "versus": {other model: paired_difference + "sentence"}}. `related(a, b)`, when given,
    says which pairs to compare (in a sweep: the models at one length, and each model across lengths).
    """
    result = {}
    for name, by_seed in accuracies.items():
        seeds = sorted(by_seed)
        values = [by_seed[s] for s in seeds]
        entry = {"seeds": seeds, "test_accuracies": values, **describe(values), "versus": {}}
        for other, other_by_seed in accuracies.items():
            if other != name and (related is None or related(name, other)):
                pair = paired_difference(by_seed, other_by_seed)
                entry["versus"][other] = {**pair, "sentence": sentence(name, other, pair)}
        result[name] = entry
    return result


def sentences(compared: dict[str, dict]) -> list[str]:
    """One sentence per pair of models, in the order the models come."""
    names = list(compared)
    return [compared[a]["versus"][b]["sentence"] for i, a in enumerate(names) for b in names[i + 1:]
            if b in compared[a]["versus"]]


def mean_std(mean: float, std: float | None) -> str:
    """"98.91 ± 0.12%" (percent), or "98.91%" for one seed."""
    return f"{100 * mean:.2f}%" if std is None or math.isnan(std) else f"{100 * mean:.2f} ± {100 * std:.2f}%"
