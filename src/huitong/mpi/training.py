"""Estimating a model from the data itself: u from random pairs, m and prior by EM.

* ``u`` — the level frequencies among random record pairs, which are almost all
  non-matches (:func:`estimate_u`).
* ``m`` and the prior — expectation–maximisation over the blocked candidate pairs, with
  ``u`` held fixed (:func:`expectation_maximisation`); EM with free ``u`` is also offered.
  Only distinct level patterns are iterated, weighted by their counts, so a million pairs
  cost what a few thousand patterns cost.
* Term-frequency tables — relative frequency of each value of the comparisons that have a
  TF value.

Pure: records in, a :class:`MatchModel` out. The seed fixes the random pairs.

Reference: Winkler, "Using the EM algorithm for weight computation in the Fellegi-Sunter
model of record linkage", Proc. Section on Survey Research Methods, ASA (1988).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from huitong.mpi.blocking import candidate_pairs
from huitong.mpi.compare.comparison import R
from huitong.mpi.model import ComparisonParams, MatchModel, Thresholds
from huitong.mpi.spec import LinkageSpec

__all__ = [
    "EmResult",
    "TrainingReport",
    "estimate_u",
    "expectation_maximisation",
    "level_matrix",
    "term_frequencies",
    "train_model",
]

_FLOOR = 1e-6  # no level probability is exactly 0: one unseen level must not veto a pair


@dataclass(frozen=True, slots=True)
class EmResult:
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    iterations: int
    converged: bool


@dataclass(frozen=True, slots=True)
class TrainingReport:
    model: MatchModel  # type: ignore[type-arg]
    candidate_pairs: int
    random_pairs: int
    em: EmResult


def level_matrix(spec: LinkageSpec[R], pairs: Iterable[tuple[R, R]]) -> np.ndarray:
    """Levels of each pair as an ``int8`` matrix (pairs × comparisons), ``-1`` = missing."""
    rows = [
        [(-1 if (lv := c.level_of(a, b)) is None else lv) for c in spec.comparisons]
        for a, b in pairs
    ]
    return np.asarray(rows, dtype=np.int8).reshape(len(rows), len(spec.comparisons))


def _normalise(counts: np.ndarray) -> np.ndarray:
    counts = np.maximum(counts, 0.0) + _FLOOR
    return counts / counts.sum()


def estimate_u(
    spec: LinkageSpec[R], records: Sequence[R], *, samples: int, seed: int
) -> list[np.ndarray]:
    """``u`` per comparison from ``samples`` random distinct pairs (Laplace-floored)."""
    rng = random.Random(seed)
    n = len(records)
    if n < 2:
        raise ValueError("need at least two records to estimate u")
    pairs = []
    for _ in range(samples):
        i, j = rng.randrange(n), rng.randrange(n - 1)
        j += j >= i
        pairs.append((records[i], records[j]))
    gamma = level_matrix(spec, pairs)
    out = []
    for k, comparison in enumerate(spec.comparisons):
        column = gamma[:, k]
        counts = np.bincount(column[column >= 0], minlength=len(comparison.levels))
        out.append(_normalise(counts.astype(float)))
    return out


def expectation_maximisation(
    gamma: np.ndarray,
    n_levels: Sequence[int],
    u: Sequence[np.ndarray],
    *,
    prior: float = 0.1,
    m: Sequence[np.ndarray] | None = None,
    fix_u: bool = True,
    label: Callable[[np.ndarray], bool | None] | None = None,
    max_iterations: int = 200,
    tolerance: float = 1e-7,
) -> EmResult:
    """EM for a two-class latent model over level patterns.

    ``gamma`` is a :func:`level_matrix`; ``m`` defaults to a start that favours the
    strongest level. ``label(pattern)`` may pin a pattern's class (semi-supervised EM).
    Stops when no parameter moves more than ``tolerance``.
    """
    patterns, counts = np.unique(gamma, axis=0, return_counts=True)
    counts = counts.astype(float)
    pinned = np.full(len(patterns), np.nan)
    if label is not None:
        for idx, pattern in enumerate(patterns):
            known = label(pattern)
            if known is not None:
                pinned[idx] = 1.0 if known else 0.0
    is_pinned = ~np.isnan(pinned)
    k = len(n_levels)
    m_cur = [np.asarray(x, dtype=float) for x in m] if m is not None else [
        _normalise(np.array([0.9] + [0.1 / max(n - 1, 1)] * (n - 1))) for n in n_levels
    ]
    u_cur = [np.asarray(x, dtype=float) for x in u]
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - reported after the loop
        log_m = np.zeros(len(patterns))
        log_u = np.zeros(len(patterns))
        for c in range(k):
            col = patterns[:, c]
            present = col >= 0
            log_m[present] += np.log(m_cur[c][col[present]])
            log_u[present] += np.log(u_cur[c][col[present]])
        a = np.log(prior) + log_m
        b = np.log1p(-prior) + log_u
        post = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        post[is_pinned] = pinned[is_pinned]
        w_match = post * counts
        w_non = (1.0 - post) * counts
        new_prior = float(w_match.sum() / counts.sum())
        new_m, new_u = [], []
        for c in range(k):
            col = patterns[:, c]
            present = col >= 0
            mm = np.bincount(col[present], weights=w_match[present], minlength=n_levels[c])
            new_m.append(_normalise(mm))
            if fix_u:
                new_u.append(u_cur[c])
            else:
                uu = np.bincount(col[present], weights=w_non[present], minlength=n_levels[c])
                new_u.append(_normalise(uu))
        delta = max(
            abs(new_prior - prior),
            *(float(np.abs(x - y).max()) for x, y in zip(new_m, m_cur, strict=True)),
            *(float(np.abs(x - y).max()) for x, y in zip(new_u, u_cur, strict=True)),
        )
        m_cur, u_cur = new_m, new_u
        prior = min(max(new_prior, 1e-9), 1 - 1e-9)
        if delta < tolerance:
            converged = True
            break
    return EmResult(m_cur, u_cur, prior, iteration, converged)


def term_frequencies(
    spec: LinkageSpec[R], records: Sequence[R], *, min_count: int = 2
) -> dict[str, tuple[dict[str, float], float]]:
    """Per TF comparison: value → relative frequency (values seen ``min_count``+ times),
    and the frequency assumed for rarer values (``1/len(records)``)."""
    out: dict[str, tuple[dict[str, float], float]] = {}
    n = max(len(records), 1)
    for comparison in spec.comparisons:
        if comparison.tf_value is None:
            continue
        counter = Counter(v for r in records if (v := comparison.tf_value(r)))
        total = max(sum(counter.values()), 1)
        out[comparison.name] = (
            {v: c / total for v, c in counter.items() if c >= min_count},
            1.0 / n,
        )
    return out


def train_model(
    spec: LinkageSpec[R],
    records: Sequence[R],
    *,
    pairs: Iterable[tuple[int, int]] | None = None,
    link_only: Sequence[int] | None = None,
    random_pairs: int = 50_000,
    seed: int = 0,
    thresholds: Thresholds | None = None,
    use_tf: bool = True,
    fix_u: bool = False,
) -> TrainingReport:
    """Train a model on ``records``: u from random pairs, then m, u and prior by
    semi-supervised EM on the blocked pairs (``pairs`` as index pairs, default: the
    specification's blocking), with the specification's training labels pinned.

    By default u is re-estimated on the blocked pairs, starting from the random-pair u:
    scoring only ever sees blocked pairs, and among those, non-matches are households
    (twins share surname, birth date, phone and address), whose agreement patterns the
    random-pair u, which assumes independent fields, badly underrates. ``fix_u=True`` keeps
    the random-pair u (the classic estimate).

    The prior must describe the same population of pairs as u. With u re-estimated on the
    blocked pairs, that is EM's share of matches among the blocked pairs. With the
    random-pair u (``fix_u=True``) it is the chance that two *random* records match: EM's
    expected number of matches among the blocked pairs divided by all pairs. Scoring a
    blocked pair with the blocked-pair prior and the random-pair u would count the fields
    that made it a candidate twice — once in the prior (being a candidate already makes a
    match likely) and again in their agreement weights — and lift pairs that agree on
    little more than their blocking key (the same given name and postcode) to "probable".
    """
    u = estimate_u(spec, records, samples=random_pairs, seed=seed)
    if pairs is None:
        pairs = candidate_pairs(records, spec.blocking_keys, link_only=link_only)
    pair_list = sorted(pairs)
    if not pair_list:
        raise ValueError("blocking produced no candidate pairs to train on")
    gamma = level_matrix(spec, ((records[i], records[j]) for i, j in pair_list))
    n_levels = [len(c.levels) for c in spec.comparisons]
    label = None
    if spec.training_label is not None:
        names = [c.name for c in spec.comparisons]
        level_names = [c.levels for c in spec.comparisons]
        spec_label = spec.training_label

        def label(pattern: np.ndarray) -> bool | None:
            levels = {
                name: (None if lv < 0 else level_names[k][lv])
                for k, (name, lv) in enumerate(zip(names, pattern, strict=True))
            }
            return spec_label(levels)

    em = expectation_maximisation(gamma, n_levels, u, fix_u=fix_u, label=label)
    tf = term_frequencies(spec, records) if use_tf else {}
    params = tuple(
        ComparisonParams(
            name=c.name,
            levels=c.levels,
            m=tuple(float(x) for x in em.m[i]),
            u=tuple(float(x) for x in em.u[i]),
            tf=tf.get(c.name, ({}, 0.0))[0],
            tf_default=tf.get(c.name, ({}, 0.0))[1],
        )
        for i, c in enumerate(spec.comparisons)
    )
    prior = em.prior
    if fix_u:
        expected = em.prior * len(pair_list)
        prior = min(max(expected / _all_pairs(len(records), link_only), 1e-12), 1 - 1e-9)
    model = MatchModel(spec, params, prior, thresholds or Thresholds())
    return TrainingReport(model, len(pair_list), random_pairs, em)


def _all_pairs(n: int, link_only: Sequence[int] | None) -> int:
    """How many pairs scoring could ever see: all pairs, or only pairs across data sets."""
    if link_only is None:
        return max(n * (n - 1) // 2, 1)
    sizes = Counter(link_only).values()
    return max((n * n - sum(k * k for k in sizes)) // 2, 1)
