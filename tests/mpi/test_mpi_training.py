"""Training on the synthetic population: blocking, EM convergence, accuracy, model JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from huitong.mpi.blocking import blocking_keys, candidate_pairs
from huitong.mpi.evaluation import blocking_quality, quality_at, true_pairs
from huitong.mpi.model import MatchModel, Thresholds, explain, score_pair
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.spec import IDENTITY_SPEC
from huitong.mpi.synth import generate_people, noisy_patients
from huitong.mpi.training import TrainingReport, expectation_maximisation, train_model


@pytest.fixture(scope="module")
def population() -> tuple[list[IdentityRecord], list[int]]:
    people = generate_people(1500, seed=11, twin_rate=0.03)
    sources = noisy_patients(people, seed=11)
    records = [record_from_patient(s.patient, source_org=s.org) for s in sources]
    return records, [s.entity for s in sources]


@pytest.fixture(scope="module")
def trained(population: tuple[list[IdentityRecord], list[int]]) -> TrainingReport:
    records, _ = population
    return train_model(IDENTITY_SPEC, records, random_pairs=20_000, seed=1)


def test_generator_is_deterministic() -> None:
    a = noisy_patients(generate_people(30, seed=5), seed=5)
    b = noisy_patients(generate_people(30, seed=5), seed=5)
    assert [s.patient for s in a] == [s.patient for s in b]


def test_blocking_keeps_true_pairs_and_removes_almost_all_others(population) -> None:
    records, entities = population
    candidates = candidate_pairs(records, blocking_keys)
    n = len(records)
    q = blocking_quality(candidates, true_pairs(entities), n * (n - 1) // 2)
    assert q.pair_completeness >= 0.99
    assert q.reduction_ratio >= 0.999


def test_em_converges_and_learns_sensible_weights(trained: TrainingReport) -> None:
    assert trained.em.converged
    params = {p.name: p for p in trained.model.params}
    rid = params["resident_id"]
    assert rid.level_weight(0) > 5  # an agreeing ID is strong evidence
    assert rid.level_weight(rid.levels.index("different")) < -5
    given = params["given_name"]
    assert given.level_weight(0) > given.level_weight(given.levels.index("different"))


def test_em_recovers_known_parameters() -> None:
    # Two binary comparisons plus a three-level one, drawn from known m, u and prior.
    rng = np.random.default_rng(0)
    m = [np.array([0.95, 0.05]), np.array([0.9, 0.1]), np.array([0.8, 0.15, 0.05])]
    u = [np.array([0.05, 0.95]), np.array([0.2, 0.8]), np.array([0.05, 0.15, 0.8])]
    n, prior = 40_000, 0.3
    is_match = rng.random(n) < prior
    gamma = np.stack(
        [np.where(is_match, rng.choice(len(mk), n, p=mk), rng.choice(len(uk), n, p=uk))
         for mk, uk in zip(m, u, strict=True)],
        axis=1,
    ).astype(np.int8)  # fmt: skip
    start_u = [np.full(len(x), 1 / len(x)) for x in u]
    em = expectation_maximisation(gamma, [2, 2, 3], start_u, fix_u=False, prior=0.5)
    assert em.converged
    assert em.prior == pytest.approx(prior, abs=0.02)
    for got, want in zip(em.m, m, strict=True):
        assert np.allclose(got, want, atol=0.03)


def test_accuracy_on_synthetic_population(population, trained: TrainingReport) -> None:
    records, entities = population
    truth = true_pairs(entities)
    pairs = candidate_pairs(records, blocking_keys)
    scored = [((i, j), score_pair(trained.model, records[i], records[j]).probability)
              for i, j in pairs]  # fmt: skip
    assert quality_at(scored, truth, 0.9).f1 >= 0.99


def test_twins_are_not_linked(population, trained: TrainingReport) -> None:
    records, entities = population
    twin_pairs = [
        (i, j) for i, j in candidate_pairs(records, blocking_keys)
        if entities[i] != entities[j]
        and records[i].birth == records[j].birth
        and records[i].phones and records[i].phones == records[j].phones
    ]  # fmt: skip
    assert twin_pairs, "the population should contain twins"
    linked = [p for p in twin_pairs
              if score_pair(trained.model, records[p[0]], records[p[1]]).grade == "certain"]
    assert len(linked) <= len(twin_pairs) * 0.05


def test_model_json_round_trip(trained: TrainingReport, population) -> None:
    records, _ = population
    text = trained.model.to_json()
    loaded = MatchModel.from_json(text)
    assert loaded == trained.model
    assert json.loads(loaded.to_json()) == json.loads(text)
    a, b = records[0], records[1]
    assert score_pair(loaded, a, b) == score_pair(trained.model, a, b)


def test_from_json_rejects_foreign_documents() -> None:
    with pytest.raises(ValueError):
        MatchModel.from_json('{"format": "something-else"}')


def test_thresholds_change_grades_not_weights(trained: TrainingReport, population) -> None:
    records, entities = population
    truth = sorted(true_pairs(entities))
    i, j = next(p for p in truth if score_pair(trained.model, records[p[0]], records[p[1]]).rule is None)
    strict = trained.model.with_thresholds(Thresholds(certain=1.0, probable=1.0, possible=1.0))
    loose = trained.model.with_thresholds(Thresholds(certain=0.0, probable=0.0, possible=0.0))
    s1, s2 = score_pair(strict, records[i], records[j]), score_pair(loose, records[i], records[j])
    assert s1.weight == s2.weight
    assert s2.grade == "certain"
    assert s1.grade in ("certainly-not", "certain") and (s1.grade == "certain") == (s1.probability >= 1.0)
    with pytest.raises(ValueError):
        Thresholds(certain=0.5, probable=0.9)


def test_explain_lists_every_field(trained: TrainingReport, population) -> None:
    records, _ = population
    evidence = explain(score_pair(trained.model, records[0], records[0]))
    assert [f["comparison"] for f in evidence["fields"]] == [c.name for c in IDENTITY_SPEC.comparisons]
    assert evidence["grade"] == "certain"


def test_common_names_weigh_less_than_rare_ones(trained: TrainingReport) -> None:
    params = {p.name: p for p in trained.model.params}["family_name"]
    common = max(params.tf, key=params.tf.__getitem__)
    weight_common, adjusted = params.weight(0, common)
    weight_rare, _ = params.weight(0, "罕见姓氏")
    assert adjusted
    assert weight_common < weight_rare


def test_random_pair_u_is_scored_with_the_random_pair_prior(population) -> None:
    """With u from random pairs (``fix_u=True``) the prior must be the chance that two
    random records match, not the share of matches among blocked pairs: scoring with the
    latter counts the blocking fields twice and lets pairs that share little more than a
    blocking key through."""
    records, entities = population
    truth = true_pairs(entities)
    pairs = candidate_pairs(records, blocking_keys)
    report = train_model(IDENTITY_SPEC, records, pairs=pairs, random_pairs=20_000, seed=1,
                         fix_u=True)  # fmt: skip
    n = len(records)
    assert report.model.prior == pytest.approx(report.em.prior * len(pairs) / (n * (n - 1) / 2))
    blocked_prior = MatchModel(IDENTITY_SPEC, report.model.params, report.em.prior)
    quality = {}
    for name, model in (("random-pair prior", report.model), ("blocked prior", blocked_prior)):
        scored = [((i, j), score_pair(model, records[i], records[j]).probability)
                  for i, j in sorted(pairs)]  # fmt: skip
        quality[name] = quality_at(scored, truth, 0.5)
    fixed, double_counted = quality["random-pair prior"], quality["blocked prior"]
    assert fixed.false_positives * 3 < double_counted.false_positives
    assert fixed.recall >= double_counted.recall - 0.002

    # Linking two files: only pairs across them could ever match.
    side = [i % 2 for i in range(n)]
    across = {(i, j) for i, j in pairs if side[i] != side[j]}
    linked = train_model(IDENTITY_SPEC, records, pairs=across, link_only=side,
                         random_pairs=20_000, seed=1, fix_u=True)  # fmt: skip
    halves = (n + 1) // 2, n // 2
    assert linked.model.prior == pytest.approx(
        linked.em.prior * len(across) / (halves[0] * halves[1]))
