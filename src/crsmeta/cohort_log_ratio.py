"""Bias and variance of the log ratio of two cohort summaries (means or medians) of log-normal levels.

A summary row that prints a marker's mean (or median) before and after, with no spread of its
own, enters the model as y = log(summary post / summary pre). Its patients' log levels are
log pre ~ Normal(c, s²) (s: the baseline log-SD of the marker across patients) and log post =
log pre + d, d ~ Normal(θ, σ²) independent of the level (the model's patient-level assumption). In
a cohort of n the baseline does not cancel from a ratio of two sample summaries as it does from a
mean of log ratios:

- for means, E[y] = θ + σ²/2 + b(s, σ, n) with b < 0 (the log of a sample mean falls short of the
  log of the population mean, the post side more, its levels being more spread), and Var[y] grows
  with s as well as σ (about 4× σ²/n at s = 1.2, σ = 0.75, n = 12);
- for medians, E[y] = θ (y − θ is symmetric) and Var[y] is (π/2)(2s² + σ²)/n − 2·arcsin(r)·s·√(s² + σ²)/n
  (r = s/√(s² + σ²)) asymptotically, which overstates it by up to 3× in cohorts of 5 to 30.

Neither the delta method nor a Fenton–Wilkinson log-normal approximation is close enough in
cohorts of 5 to 30 (both overstate the variance by up to 2× for means; docs/validation.md), so
:func:`ratio_tables` takes both moments from simulated cohorts on a grid of (s, σ), with fixed
common random numbers per n (the same row always gets the same table). The tables hold each moment
divided by σ², which is smooth and finite down to σ = 0; the model interpolates them bilinearly
at its s[marker] and σ[marker] (crsmeta.model.build). The simulation is numpy only.

Simulating a table takes up to ~1 s (the medians' at n = 66), in every fit job that builds the
model, so the workflow keeps them on disk (:func:`kept_on_disk`).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from crsmeta.compile_cache import TABLE_CACHE_VARIABLE
from crsmeta.io import atomic_output

BASELINE_SD_GRID = np.linspace(0.0, 4.0, 21)  # s, the baseline log-SD; beyond 4 the last value
CHANGE_SD_GRID = np.linspace(0.05, 4.05, 21)  # σ; below 0.05 and beyond 4.05 the nearest value
SIMULATED_COHORTS = 2000  # here and in crsmeta.cv_shift's tables
_SEED = 20261205
_STREAM = (1,)  # of standard_normals; crsmeta.cv_shift's tables draw the stream ()
MIN_PATIENTS = 2  # a "cohort" of one has no spread of its summary to speak of; n below rounds up


@functools.lru_cache(maxsize=256)
def standard_normals(n: int, stream: tuple[int, ...] = _STREAM) -> tuple[np.ndarray, np.ndarray]:
    """Two fixed (cohorts × n) standard normal arrays, the log baseline levels and the changes:
    the common random numbers of a table's cells. Each module's tables draw a stream of their own,
    seeded by [seed, *stream, n]."""
    rng = np.random.default_rng([_SEED, *stream, n])
    return rng.standard_normal((SIMULATED_COHORTS, n)), rng.standard_normal((SIMULATED_COHORTS, n))


@functools.lru_cache(maxsize=256)
def mean_ratio_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(b/σ², Var/σ²) of y = log(mean post / mean pre) − σ²/2 − θ in cohorts of ``n``, on
    :data:`BASELINE_SD_GRID` × :data:`CHANGE_SD_GRID`."""
    bias, variance = kept_on_disk("mean_ratio", n, lambda: np.stack(_simulated_mean_ratio_tables(n)))
    return bias, variance


def _simulated_mean_ratio_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    baseline, change = standard_normals(n)
    bias = np.empty((BASELINE_SD_GRID.size, CHANGE_SD_GRID.size))
    variance = np.empty_like(bias)
    for i, s in enumerate(BASELINE_SD_GRID):
        pre = np.exp(s * baseline)
        log_mean_pre = np.log(pre.mean(axis=1))
        for j, sigma in enumerate(CHANGE_SD_GRID):
            y = np.log((pre * np.exp(sigma * change)).mean(axis=1)) - log_mean_pre - sigma**2 / 2
            bias[i, j], variance[i, j] = y.mean() / sigma**2, y.var(ddof=1) / sigma**2
    return bias, variance


@functools.lru_cache(maxsize=256)
def median_ratio_variance_table(n: int) -> np.ndarray:
    """Var/σ² of y = median(log post) − median(log pre) in cohorts of ``n`` (its mean is θ), on
    :data:`BASELINE_SD_GRID` × :data:`CHANGE_SD_GRID`."""
    return kept_on_disk("median_ratio_variance", n, lambda: _simulated_median_ratio_variance_table(n))


def _simulated_median_ratio_variance_table(n: int) -> np.ndarray:
    baseline, change = standard_normals(n)
    variance = np.empty((BASELINE_SD_GRID.size, CHANGE_SD_GRID.size))
    for i, s in enumerate(BASELINE_SD_GRID):
        log_pre = s * baseline
        median_pre = np.median(log_pre, axis=1)
        for j, sigma in enumerate(CHANGE_SD_GRID):
            y = np.median(log_pre + sigma * change, axis=1) - median_pre
            variance[i, j] = y.var(ddof=1) / sigma**2
    return variance


def kept_on_disk(name: str, n: int, simulate: Callable[[], np.ndarray], source: Path = Path(__file__)) -> np.ndarray:
    """``simulate()``, read from a file in the folder ``$CRSMETA_TABLE_CACHE`` names when an earlier
    process wrote it there, else simulated (and written there, when the variable is set).

    A table is a fixed function of the code of its module ``source`` (its grids, seed and number
    of cohorts), numpy's version (its random streams) and n, so the file's name holds a hash of all three: a
    change to any of them simulates anew, and a file read is the same array, bit for bit, as one
    simulated now."""
    folder = os.environ.get(TABLE_CACHE_VARIABLE)
    if not folder:
        return simulate()
    key = hashlib.sha256(source.read_bytes() + f"{name} {n} numpy {np.__version__}".encode()).hexdigest()
    path = Path(folder) / f"{name}_{n}_{key[:20]}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    table = simulate()
    with atomic_output(path) as temporary, open(temporary, "wb") as file:
        np.save(file, table, allow_pickle=False)
    return table


def patients(n: float) -> int:
    """A row's n as a whole number of simulated patients (at least :data:`MIN_PATIENTS`)."""
    return max(MIN_PATIENTS, int(round(n)))


def ratio_tables(n: float, medians: bool) -> tuple[np.ndarray, np.ndarray]:
    """(b/σ², Var/σ²) of a row's log ratio of two summaries of ``n`` patients: b that of means
    (the model weighs it with the row's mean_weight, 0 for medians), Var that of medians when
    ``medians`` (also for an unstated statistic, as its efficiency is the median's), else of means."""
    bias, mean_variance = mean_ratio_tables(patients(n))
    return bias, median_ratio_variance_table(patients(n)) if medians else mean_variance


def table_at(table: np.ndarray, s: float, sigma: float) -> float:
    """``table`` at (s, σ), bilinearly interpolated, the nearest edge beyond the grid: what the
    model computes (numpy, for tests and the frequentist cross-check)."""
    i, u = _cell(BASELINE_SD_GRID, s)
    j, v = _cell(CHANGE_SD_GRID, sigma)
    return float((1 - u) * ((1 - v) * table[i, j] + v * table[i, j + 1])
                 + u * ((1 - v) * table[i + 1, j] + v * table[i + 1, j + 1]))


def _cell(grid: np.ndarray, value: float) -> tuple[int, float]:
    position = np.clip((value - grid[0]) / (grid[1] - grid[0]), 0.0, grid.size - 1.0)
    low = min(int(np.floor(position)), grid.size - 2)
    return low, float(position - low)
