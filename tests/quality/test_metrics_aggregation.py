"""Majority vote and Dawid-Skene, against pure-Python references, hand-derived cases and crowd-kit's DawidSkene.

crowd-kit (with pandas) is the dev-only oracle: the same synthetic crowds go through both implementations and the
labels, posteriors, priors, confusion matrices and iteration counts must agree.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

import numeric
from numeric import aggregation
from numeric.aggregation import DawidSkeneResult, dawid_skene, majority_vote
from numeric.agreement import label_counts as vote_counts

# crowd-kit calls pandas APIs that pandas 3 deprecates; those warnings are crowd-kit's, not this module's.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crowdkit")

# ---------------------------------------------------------------------------------------------------------------
# Synthetic crowds and the crowd-kit oracle
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crowd:
    items: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    truth: np.ndarray
    confusions: np.ndarray  # (n_workers, k, k): [worker, true class, given label]


def synthetic_crowd(
    seed: int,
    *,
    n_items: int = 2000,
    n_workers: int = 50,
    n_classes: int = 3,
    judgments: tuple[int, int] = (3, 5),
    heavy_items: float = 0.0,
    spammers: int = 0,
    accuracy: tuple[float, float] = (0.35, 0.95),
) -> Crowd:
    """Each item is judged by ``judgments`` (inclusive range) distinct random workers, each drawing its label from
    its own confusion row: accuracy on the diagonal, the rest spread at random. ``heavy_items`` is the fraction of
    items judged by 20-40 workers instead; the last ``spammers`` workers answer class 0 whatever the truth. The
    judgments come back shuffled (not grouped by item)."""
    rng = np.random.default_rng(seed)
    k = n_classes
    truth = rng.choice(k, n_items, p=rng.dirichlet(np.full(k, 4.0)))
    acc = rng.uniform(*accuracy, n_workers)[:, np.newaxis, np.newaxis]
    confusions = acc * np.eye(k) + (1 - acc) * rng.dirichlet(np.ones(k), size=(n_workers, k))
    confusions[n_workers - spammers :] = np.eye(k)[0]
    per_item = rng.integers(judgments[0], judgments[1] + 1, n_items)
    heavy = rng.random(n_items) < heavy_items
    per_item[heavy] = rng.integers(20, 41, int(heavy.sum()))
    chosen = np.argsort(rng.random((n_items, n_workers)), axis=1)
    taken = np.arange(n_workers) < per_item[:, np.newaxis]
    items = np.nonzero(taken)[0]
    workers = chosen[taken]
    cdf = confusions[workers, truth[items]].cumsum(axis=1)
    labels = np.minimum((rng.random(items.size)[:, np.newaxis] >= cdf).sum(axis=1), k - 1)
    order = rng.permutation(items.size)
    return Crowd(items[order], workers[order], labels[order], truth, confusions)


@dataclass(frozen=True)
class Oracle:
    labels: np.ndarray
    posteriors: np.ndarray
    priors: np.ndarray
    confusions: np.ndarray
    n_iter: int


def crowdkit_dawid_skene(
    crowd: Crowd, n_classes: int, *, gold: np.ndarray | None = None, max_iter: int = 100, tol: float = 1e-6
) -> Oracle:
    """crowd-kit's DawidSkene on the same judgments, converted to this module's array conventions.

    crowd-kit only knows the tasks, workers and labels it sees: every item here has a judgment and every class
    occurs, so its tables cover ours except for (worker, label) pairs never given, which are probability 0.
    """
    frame = pd.DataFrame({"task": crowd.items, "worker": crowd.workers, "label": crowd.labels})
    true_labels = None
    if gold is not None:
        known = np.flatnonzero(gold >= 0)
        true_labels = pd.Series(gold[known], index=known)
    model = DawidSkene(n_iter=max_iter, tol=tol)
    model.fit(frame, true_labels)
    classes = list(range(n_classes))
    probas = model.probas_.sort_index()[classes]
    assert list(probas.index) == list(range(len(probas)))
    n_workers = int(crowd.workers.max()) + 1
    confusions = np.zeros((n_workers, n_classes, n_classes))
    index = model.errors_.index.to_frame().to_numpy()
    confusions[index[:, 0], :, index[:, 1]] = model.errors_[classes].to_numpy()
    return Oracle(
        labels=model.labels_.sort_index().to_numpy(),
        posteriors=probas.to_numpy(),
        priors=model.priors_.sort_index().to_numpy(),
        confusions=confusions,
        n_iter=len(model.loss_history_),
    )


@pytest.fixture(params=["default blocks", "7 blocks"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the module's own cache blocking (one block for these small crowds) and with the judged items
    forced into 7 blocks, so that block boundaries, per-block spill-over and per-block gold are exercised."""
    if request.param == "7 blocks":
        monkeypatch.setattr(aggregation, "_block_count", lambda n_judged, *_: min(7, n_judged))
    return str(request.param)


def run(crowd: Crowd, n_classes: int, **kwargs: object) -> DawidSkeneResult:
    return dawid_skene(crowd.items, crowd.workers, crowd.labels, n_classes=n_classes, **kwargs)  # type: ignore[arg-type]


def assert_matches_oracle(result: DawidSkeneResult, oracle: Oracle, *, min_agreement: float = 0.995) -> None:
    """Posteriors, priors and confusions to 1e-8 (crowd-kit clips posteriors below at 1e-10 as a side effect of its
    loss), the same iteration count, and the same labels wherever the top two posteriors are more than 1e-6 apart
    (crowd-kit breaks exact ties by the order it first saw the labels in, this module by the lowest class)."""
    np.testing.assert_allclose(result.posteriors, oracle.posteriors, rtol=0, atol=1e-8)
    top_two = np.sort(oracle.posteriors, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-6
    np.testing.assert_array_equal(result.labels[clear], oracle.labels[clear])
    assert (result.labels == oracle.labels).mean() >= min_agreement
    # Above crowd-kit's clipping, posteriors agree to relative precision too, and so do all confusion entries,
    # including those clipped at crowd-kit's 1e-10 floor.
    above_floor = oracle.posteriors > 1e-9
    np.testing.assert_allclose(result.posteriors[above_floor], oracle.posteriors[above_floor], rtol=1e-6)
    np.testing.assert_allclose(result.priors, oracle.priors, rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.confusions, oracle.confusions, rtol=1e-6, atol=0)
    assert result.n_iter == oracle.n_iter


# ---------------------------------------------------------------------------------------------------------------
# vote_counts and majority_vote
# ---------------------------------------------------------------------------------------------------------------


def test_majority_vote_hand_derived() -> None:
    counts = [[3, 1, 0], [2, 2, 0], [0, 0, 0], [0, 0, 5], [1, 1, 1], [0, 4, 4]]
    labels, share = majority_vote(counts)
    assert labels.tolist() == [0, -1, -1, 2, -1, -1]
    np.testing.assert_allclose(share, [0.75, 0.5, np.nan, 1.0, 1 / 3, 0.5])
    labels, share = majority_vote(counts, on_tie="first")
    assert labels.tolist() == [0, 0, -1, 2, 0, 1]
    np.testing.assert_allclose(share, [0.75, 0.5, np.nan, 1.0, 1 / 3, 0.5])
    assert labels.dtype == np.int64 and share.dtype == np.float64


def ref_majority_vote(row: list[int], on_tie: str) -> tuple[int, float]:
    total = sum(row)
    if total == 0:
        return -1, float("nan")
    top = max(row)
    winners = [c for c, votes in enumerate(row) if votes == top]
    label = winners[0] if len(winners) == 1 or on_tie == "first" else -1
    return label, top / total


@pytest.mark.parametrize("on_tie", ["none", "first"])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_majority_vote_matches_reference(on_tie: str, k: int) -> None:
    counts = np.random.default_rng(k).integers(0, 4, (300, k))
    labels, share = majority_vote(counts, on_tie=on_tie)
    expected = [ref_majority_vote(row, on_tie) for row in counts.tolist()]
    assert labels.tolist() == [label for label, _ in expected]
    np.testing.assert_allclose(share, [s for _, s in expected], rtol=1e-15)


def test_majority_vote_edge_cases() -> None:
    labels, share = majority_vote(np.zeros((0, 3)))
    assert labels.shape == (0,) and share.shape == (0,)
    with pytest.raises(ValueError, match="'random'"):
        majority_vote([[1, 0]], on_tie="random")
    with pytest.raises(ValueError, match="n_classes >= 1"):
        majority_vote([1, 0])
    with pytest.raises(ValueError, match="non-negative"):
        majority_vote([[1, -1]])


# ---------------------------------------------------------------------------------------------------------------
# Dawid-Skene against crowd-kit
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n_classes"), [(0, 3), (1, 4), (2, 3), (3, 4)])
@pytest.mark.usefixtures("blocks")
def test_dawid_skene_matches_crowdkit(seed: int, n_classes: int) -> None:
    crowd = synthetic_crowd(seed, n_classes=n_classes)
    result = run(crowd, n_classes)
    assert_matches_oracle(result, crowdkit_dawid_skene(crowd, n_classes))
    assert result.converged


@pytest.mark.usefixtures("blocks")
def test_dawid_skene_matches_crowdkit_with_heavy_items_and_spammers() -> None:
    """Some items judged by up to 40 workers (the spill-over path), and spammers who never give most labels."""
    crowd = synthetic_crowd(11, n_classes=3, heavy_items=0.02, spammers=3)
    assert np.bincount(crowd.items).max() >= 30
    result = run(crowd, 3, tol=1e-5)
    assert_matches_oracle(result, crowdkit_dawid_skene(crowd, 3, tol=1e-5))
    # A spammer only ever says 0: every row of its confusion matrix is [1, 0, 0].
    np.testing.assert_allclose(result.confusions[-3:], np.broadcast_to(np.eye(3)[0], (3, 3, 3)), atol=1e-9)


@pytest.mark.parametrize("max_iter", [0, 1, 3])
def test_dawid_skene_matches_crowdkit_when_stopped_early(max_iter: int) -> None:
    crowd = synthetic_crowd(5, n_items=500, n_classes=4)
    result = run(crowd, 4, max_iter=max_iter)
    # With max_iter = 0 the posteriors are the vote shares: many exact ties, which the two break differently.
    agreement = 0.0 if max_iter == 0 else 0.995
    assert_matches_oracle(result, crowdkit_dawid_skene(crowd, 4, max_iter=max_iter), min_agreement=agreement)
    assert result.n_iter == max_iter and not result.converged


@pytest.mark.usefixtures("blocks")
def test_dawid_skene_matches_crowdkit_with_gold() -> None:
    crowd = synthetic_crowd(8, n_classes=3)
    gold = np.where(np.random.default_rng(8).random(crowd.truth.size) < 0.1, crowd.truth, -1)
    result = run(crowd, 3, gold=gold)
    assert_matches_oracle(result, crowdkit_dawid_skene(crowd, 3, gold=gold))


def test_dawid_skene_matches_crowdkit_with_one_worker() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 200)
    crowd = Crowd(np.arange(200), np.zeros(200, dtype=np.int64), labels, labels, np.eye(3)[np.newaxis])
    result = run(crowd, 3)
    assert_matches_oracle(result, crowdkit_dawid_skene(crowd, 3))
    # A lone worker cannot be contradicted: the estimate is its answers, its confusion matrix the identity.
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.confusions[0], np.eye(3), atol=1e-9)
    np.testing.assert_allclose(result.priors, np.bincount(labels) / 200, atol=1e-9)


def test_unobserved_class_gets_no_mass_and_leaves_the_rest_as_crowdkit() -> None:
    """n_classes = 4 but class 3 never occurs: crowd-kit (which only sees classes 0-2) is the oracle for 0-2."""
    crowd = synthetic_crowd(4, n_items=600, n_classes=3, spammers=1)
    result = run(crowd, 4)
    oracle = crowdkit_dawid_skene(crowd, 3)
    assert result.posteriors.shape == (600, 4)
    assert np.all(result.posteriors[:, 3] == 0) and result.priors[3] == 0
    np.testing.assert_allclose(result.posteriors[:, :3], oracle.posteriors, rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.confusions[:, :3, :3], oracle.confusions, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(result.labels, oracle.labels)
    assert result.n_iter == oracle.n_iter
    # The row for the absent true class is uniform over the labels each worker gave: [1, 0, 0, 0] for the spammer.
    np.testing.assert_allclose(result.confusions[-1, 3], [1, 0, 0, 0])
    np.testing.assert_allclose(result.confusions[:-1, 3], np.tile([1 / 3, 1 / 3, 1 / 3, 0], (49, 1)))


def test_judgment_order_and_blocking_do_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    crowd = synthetic_crowd(6, n_items=800, n_classes=3, heavy_items=0.02)
    gold = np.where(np.arange(800) % 9 == 0, crowd.truth, -1)
    order = np.lexsort((crowd.workers, crowd.items))
    shuffled = run(crowd, 3, gold=gold)
    grouped = dawid_skene(crowd.items[order], crowd.workers[order], crowd.labels[order], n_classes=3, gold=gold)
    monkeypatch.setattr(aggregation, "_block_count", lambda n_judged, *_: n_judged)  # one item per block
    blocked = run(crowd, 3, gold=gold)
    for other in (grouped, blocked):
        np.testing.assert_allclose(other.posteriors, shuffled.posteriors, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.confusions, shuffled.confusions, rtol=0, atol=1e-12)
        assert other.n_iter == shuffled.n_iter


# ---------------------------------------------------------------------------------------------------------------
# Recovery of a known truth, and gold
# ---------------------------------------------------------------------------------------------------------------


def test_recovers_known_confusions_and_beats_majority_vote() -> None:
    crowd = synthetic_crowd(21, n_items=3000, n_workers=20, n_classes=3, judgments=(5, 5), accuracy=(0.25, 0.9))
    result = run(crowd, 3)
    mv_labels, _ = majority_vote(vote_counts(crowd.items, crowd.labels, n_items=3000, n_classes=3), on_tie="first")
    ds_accuracy = (result.labels == crowd.truth).mean()
    mv_accuracy = (mv_labels == crowd.truth).mean()
    assert ds_accuracy >= mv_accuracy + 0.01, (ds_accuracy, mv_accuracy)
    # Each estimated row is close to a frequency over n[w, t] judgments: within 4 worst-case standard errors.
    n = np.zeros((20, 3))
    np.add.at(n, (crowd.workers, crowd.truth[crowd.items]), 1)
    error = np.abs(result.confusions - crowd.confusions)
    assert np.all(error <= 4 * np.sqrt(0.25 / n)[:, :, np.newaxis]), error.max()
    # Against the frequencies actually realised (given the truth), only the few mislabelled items leave a trace.
    realised = np.zeros((20, 3, 3))
    np.add.at(realised, (crowd.workers, crowd.truth[crowd.items], crowd.labels), 1)
    realised /= n[:, :, np.newaxis]
    assert np.abs(result.confusions - realised).max() < 0.06
    true_priors = np.bincount(crowd.truth, minlength=3) / 3000
    np.testing.assert_allclose(result.priors, true_priors, atol=0.02)
    true_skills = [sum(true_priors[t] * crowd.confusions[w, t, t] for t in range(3)) for w in range(20)]
    np.testing.assert_allclose(result.skills, true_skills, atol=0.05)


def adversarial_crowd(seed: int) -> Crowd:
    """Binary, 600 items judged by all of three workers: worker 0 is right 90% of the time, workers 1 and 2 flip
    the answer 85% of the time, so the majority is usually wrong."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 600)
    items = np.repeat(np.arange(600), 3)
    workers = np.tile(np.arange(3), 600)
    wrong = rng.random(1800) < np.tile([0.1, 0.85, 0.85], 600)
    labels = np.where(wrong, 1 - truth[items], truth[items])
    confusions = np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.15, 0.85], [0.85, 0.15]], [[0.15, 0.85], [0.85, 0.15]]])
    return Crowd(items, workers, labels, truth, confusions)


@pytest.mark.usefixtures("blocks")
def test_gold_exposes_an_adversarial_majority() -> None:
    crowd = adversarial_crowd(9)
    blind = run(crowd, 2)
    # Without gold the model trusts the majority: worker 0 looks like the adversary.
    assert blind.skills[0] < 0.5 < min(blind.skills[1], blind.skills[2])
    assert (blind.labels == crowd.truth).mean() < 0.5

    gold = np.full(600, -1)
    gold[:120] = crowd.truth[:120]
    informed = run(crowd, 2, gold=gold)
    np.testing.assert_array_equal(informed.posteriors[:120], np.eye(2)[crowd.truth[:120]])
    np.testing.assert_array_equal(informed.labels[:120], crowd.truth[:120])
    assert informed.skills[0] > 0.8 and max(informed.skills[1], informed.skills[2]) < 0.3
    np.testing.assert_allclose(informed.confusions, crowd.confusions, atol=0.06)
    assert (informed.labels[120:] == crowd.truth[120:]).mean() > 0.9
    assert_matches_oracle(informed, crowdkit_dawid_skene(crowd, 2, gold=gold))


def test_a_class_only_in_gold_is_learned() -> None:
    """No worker ever answers 2, but gold item 0 is class 2 and both workers called it 1: other items they call 1
    may be class 2 as well, so they get a share of it (exactly 0 if class 2 were dropped as absent)."""
    result = dawid_skene([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], [1, 1, 1, 1, 0, 0], n_classes=3, gold=[2, -1, -1])
    assert result.posteriors[1, 2] > 0.01 and result.priors[2] > 0.3
    assert result.confusions[0, 2, 1] == pytest.approx(1.0)


def test_gold_items_without_judgments_are_one_hot_and_count_towards_priors() -> None:
    # Item 0 has votes 0, 0, 1 (shares [2/3, 1/3]); item 1 is gold class 1 without judgments; item 2 has nothing.
    # With no EM step the priors are the mean over items 0 and 1: ([2/3, 1/3] + [0, 1]) / 2 = [1/3, 2/3].
    result = dawid_skene([0, 0, 0], [0, 1, 2], [0, 0, 1], n_classes=2, gold=[-1, 1, -1], max_iter=0)
    assert result.labels.tolist() == [0, 1, -1]
    np.testing.assert_allclose(result.posteriors, [[2 / 3, 1 / 3], [0, 1], [1 / 3, 2 / 3]], rtol=1e-15)
    np.testing.assert_allclose(result.priors, [1 / 3, 2 / 3], rtol=1e-15)
    # After EM the gold-only item is still one-hot and still in the priors.
    result = dawid_skene([0, 0, 0], [0, 1, 2], [0, 0, 1], n_classes=2, gold=[-1, 1, -1])
    np.testing.assert_array_equal(result.posteriors[1], [0.0, 1.0])
    np.testing.assert_allclose(result.priors, (result.posteriors[0] + [0, 1]) / 2, rtol=1e-12)
    np.testing.assert_allclose(result.posteriors[2], result.priors, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# SQUAREM acceleration
# ---------------------------------------------------------------------------------------------------------------


def log_likelihood(crowd: Crowd, result: DawidSkeneResult, gold: np.ndarray | None = None) -> float:
    """The marginal log-likelihood of the judgments (gold items: the joint at their class) at the result's
    parameters, by a plain per-item loop: the quantity EM and SQUAREM must never decrease."""
    log_conf = np.log(np.maximum(result.confusions, 1e-300))
    log_prior = np.log(np.maximum(result.priors, 1e-300))
    total = 0.0
    for item in np.unique(crowd.items).tolist():
        mask = crowd.items == item
        joint = log_prior + log_conf[crowd.workers[mask], :, crowd.labels[mask]].sum(axis=0)
        if gold is not None and gold[item] >= 0:
            total += float(joint[gold[item]])
        else:
            total += float(np.logaddexp.reduce(joint))
    return total


@pytest.mark.usefixtures("blocks")
@pytest.mark.parametrize(("seed", "with_gold"), [(30, False), (31, True), (32, True)])
def test_accelerated_reaches_the_fixed_point_of_a_long_plain_run(seed: int, with_gold: bool) -> None:
    crowd = synthetic_crowd(seed, n_items=1500, n_classes=4, heavy_items=0.01, spammers=2)
    gold = np.where(np.arange(1500) % 10 == 0, crowd.truth, -1) if with_gold else None
    converged = run(crowd, 4, gold=gold, max_iter=5000, tol=1e-13)
    fast = run(crowd, 4, gold=gold, tol=1e-12, max_iter=5000, accelerate=True)
    assert fast.converged and fast.n_iter < converged.n_iter, (fast.n_iter, converged.n_iter)
    np.testing.assert_allclose(fast.posteriors, converged.posteriors, rtol=0, atol=5e-4)
    np.testing.assert_allclose(fast.confusions, converged.confusions, rtol=0, atol=5e-5)
    np.testing.assert_allclose(fast.priors, converged.priors, rtol=0, atol=1e-6)
    top_two = np.sort(converged.posteriors, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-3
    np.testing.assert_array_equal(fast.labels[clear], converged.labels[clear])
    if gold is not None:
        known = gold >= 0
        np.testing.assert_array_equal(fast.posteriors[known], np.eye(4)[gold[known]])
    # As the quality job runs it (1e-7): a closer fit than the plain loop's at crowd-kit's default, in fewer steps.
    quick, default = run(crowd, 4, gold=gold, tol=1e-7, accelerate=True), run(crowd, 4, gold=gold)
    assert log_likelihood(crowd, quick, gold) >= log_likelihood(crowd, default, gold) - 1e-6
    distance = [np.abs(r.posteriors - converged.posteriors).max() for r in (quick, default)]
    assert distance[0] <= distance[1] and quick.n_iter < default.n_iter, (distance, quick.n_iter, default.n_iter)


def test_accelerated_log_likelihood_climbs_to_the_maximum() -> None:
    """An extrapolation that loses likelihood is dropped (and one is only tried with budget left to fall back), so
    the fit after any number of steps is at least as likely as after the first EM step, and it climbs to the
    likelihood of a fully converged plain run."""
    crowd = synthetic_crowd(33, n_items=600, n_classes=3, spammers=1)
    values = [log_likelihood(crowd, run(crowd, 3, max_iter=m, tol=0.0, accelerate=True)) for m in range(1, 25)]
    best = log_likelihood(crowd, run(crowd, 3, max_iter=5000, tol=1e-13))
    assert all(value >= values[0] for value in values), values
    assert values[-1] > values[0] + 40 and best - 0.01 < values[-1] <= best + 1e-9


@pytest.mark.parametrize("max_iter", [0, 1, 2, 3, 7])
def test_accelerated_respects_max_iter(max_iter: int) -> None:
    crowd = synthetic_crowd(34, n_items=400, n_classes=3)
    result = run(crowd, 3, max_iter=max_iter, tol=0.0, accelerate=True)
    assert result.n_iter == max_iter and not result.converged
    if max_iter == 0:
        plain = run(crowd, 3, max_iter=0)
        np.testing.assert_array_equal(result.posteriors, plain.posteriors)
    if max_iter == 1:  # one EM step is the same step either way
        np.testing.assert_allclose(result.posteriors, run(crowd, 3, max_iter=1).posteriors, rtol=0, atol=1e-15)


def test_accelerated_keeps_absent_classes_at_zero_and_the_edge_cases() -> None:
    crowd = synthetic_crowd(35, n_items=500, n_classes=3, spammers=1)
    result = run(crowd, 4, accelerate=True)
    assert np.all(result.posteriors[:, 3] == 0) and result.priors[3] == 0
    np.testing.assert_allclose(result.posteriors[:, :3], run(crowd, 3, accelerate=True).posteriors, atol=1e-12)
    empty = dawid_skene([], [], [], n_classes=2, n_items=2, accelerate=True)
    assert empty.n_iter == 0 and empty.converged and empty.labels.tolist() == [-1, -1]
    same = dawid_skene(np.repeat(np.arange(10), 3), np.tile(np.arange(3), 10), np.ones(30, int), n_classes=3,
                       accelerate=True)  # fmt: skip
    assert same.labels.tolist() == [1] * 10 and same.converged


# ---------------------------------------------------------------------------------------------------------------
# Edge cases and invariants
# ---------------------------------------------------------------------------------------------------------------


def test_a_much_judged_split_item_does_not_underflow() -> None:
    """3000 workers split 1500-1500 on item 0, each also right on one item of either class (items 1-1000 are
    class 0, 1001-2000 class 1, three workers each): both classes' likelihoods of item 0 are far below the
    smallest double, yet the max-shifted E-step gives a finite posterior, as crowd-kit's does."""
    n = 3000
    truth = (np.arange(2001) > 1000).astype(np.int64)
    others = 1 + np.arange(2 * n) // 3
    items = np.concatenate([np.zeros(n, dtype=np.int64), others])
    workers = np.concatenate([np.arange(n), np.arange(2 * n) % n])
    labels = np.concatenate([np.arange(n) % 2, truth[others]])
    crowd = Crowd(items, workers, labels, truth, np.empty((n, 2, 2)))
    result = run(crowd, 2)
    assert np.isfinite(result.posteriors).all()
    np.testing.assert_array_equal(result.labels[1:], truth[1:])
    assert_matches_oracle(result, crowdkit_dawid_skene(crowd, 2))


def test_zero_judgments() -> None:
    result = dawid_skene([], [], [], n_classes=3, n_items=4, n_workers=2)
    np.testing.assert_array_equal(result.posteriors, np.full((4, 3), 1 / 3))
    np.testing.assert_array_equal(result.priors, np.full(3, 1 / 3))
    assert result.labels.tolist() == [-1, -1, -1, -1]
    assert result.n_iter == 0 and result.converged
    assert result.confusions.shape == (2, 3, 3) and np.all(result.confusions == 1 / 3)
    np.testing.assert_allclose(result.skills, [1 / 3, 1 / 3])

    bare = dawid_skene(np.array([], dtype=np.int64), [], [], n_classes=2)
    assert bare.posteriors.shape == (0, 2) and bare.labels.shape == (0,) and bare.confusions.shape == (0, 2, 2)

    with_gold = dawid_skene([], [], [], n_classes=2, gold=[1, -1, 1, 0])
    assert with_gold.labels.tolist() == [1, -1, 1, 0]
    np.testing.assert_allclose(with_gold.priors, [1 / 3, 2 / 3])
    np.testing.assert_allclose(with_gold.posteriors[1], [1 / 3, 2 / 3])


def test_everyone_gives_the_same_label() -> None:
    """Hand-derived: all mass on class 1; the never-seen true classes 0 and 2 get only the 1e-10 floor, which the
    normalisation over the one label given turns into the row [0, 1, 0] as well."""
    items = np.repeat(np.arange(10), 3)
    workers = np.tile(np.arange(3), 10)
    result = dawid_skene(items, workers, np.ones(30, dtype=np.int64), n_classes=3)
    assert result.labels.tolist() == [1] * 10
    np.testing.assert_allclose(result.posteriors, np.tile([0.0, 1.0, 0.0], (10, 1)), atol=1e-9)
    np.testing.assert_allclose(result.confusions, np.tile([0.0, 1.0, 0.0], (3, 3, 1)), atol=1e-12)
    np.testing.assert_allclose(result.priors, [0.0, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(result.skills, [1.0, 1.0, 1.0], atol=1e-9)


def test_single_class() -> None:
    result = dawid_skene([0, 1, 1], [0, 0, 1], [0, 0, 0], n_classes=1)
    np.testing.assert_array_equal(result.posteriors, [[1.0], [1.0]])
    assert result.labels.tolist() == [0, 0]
    np.testing.assert_allclose(result.skills, [1.0, 1.0])


def test_items_and_workers_without_judgments() -> None:
    crowd = synthetic_crowd(2, n_items=300, n_workers=10, n_classes=3)
    # Spread the indices out: items 2i, workers 2w, plus trailing empty slots.
    result = dawid_skene(crowd.items * 2, crowd.workers * 2, crowd.labels, n_classes=3, n_items=603, n_workers=21)
    dense = run(crowd, 3)
    np.testing.assert_allclose(result.posteriors[::2][:300], dense.posteriors, atol=1e-12)
    np.testing.assert_allclose(result.posteriors[1::2], np.tile(dense.priors, (301, 1)), atol=1e-12)
    assert np.all(result.labels[1::2] == -1)
    np.testing.assert_allclose(result.confusions[::2][:10], dense.confusions, atol=1e-12)
    assert np.all(result.confusions[1::2] == 1 / 3)
    np.testing.assert_allclose(result.skills[1::2], 1 / 3)


def test_invariants() -> None:
    crowd = synthetic_crowd(13, n_items=700, n_classes=4, spammers=2)
    result = run(crowd, 4)
    np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(result.confusions.sum(axis=2), 1.0, atol=1e-12)
    np.testing.assert_allclose(result.priors.sum(), 1.0, atol=1e-12)
    assert np.all(result.posteriors >= 0) and np.all(result.confusions >= 0)
    expected_skills = [sum(result.priors[t] * result.confusions[w, t, t] for t in range(4)) for w in range(50)]
    np.testing.assert_allclose(result.skills, expected_skills, rtol=1e-12)
    first_max = [row.index(max(row)) for row in result.posteriors.tolist()]
    assert result.labels.tolist() == first_max
    assert result.labels.dtype == np.int64 and isinstance(result.n_iter, int) and isinstance(result.converged, bool)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.n_iter = 0  # type: ignore[misc]


def test_posterior_ties_go_to_the_lowest_class() -> None:
    # Two workers who always disagree, symmetric data: every posterior stays uniform.
    result = dawid_skene([0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0], n_classes=2)
    np.testing.assert_allclose(result.posteriors, 0.5)
    assert result.labels.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": [0, 3]}, "below n_classes"),
        ({"labels": [0, -1]}, "negative"),
        ({"labels": [0]}, "differ in length"),
        ({"workers": [0, 1, 2]}, "differ in length"),
        ({"items": [0.0, 1.0]}, "integers"),
        ({"items": [[0, 1]]}, "1-D"),
        ({"n_items": 1}, "n_items"),
        ({"n_workers": 1}, "n_workers"),
        ({"gold": [0]}, "n_items is 1"),
        ({"gold": [0], "n_items": 2}, "shape"),
        ({"gold": [[0, 1]]}, "1-D"),
        ({"gold": [0, 3]}, "gold values"),
        ({"gold": [-2, 0]}, "gold values"),
        ({"max_iter": -1}, "max_iter"),
        ({"n_classes": 0}, "n_classes"),
    ],
)
def test_dawid_skene_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"items": [0, 1], "workers": [0, 1], "labels": [0, 1], "n_classes": 3}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        dawid_skene(**arguments)  # type: ignore[arg-type]


def test_module_is_pure_numpy_and_exported() -> None:
    source = inspect.getsource(aggregation)
    assert "import django" not in source and "from django" not in source
    assert "pandas" not in source and "scipy" not in source
    for name in aggregation.__all__:
        assert getattr(numeric, name) is getattr(aggregation, name)
    assert {"majority_vote", "dawid_skene", "DawidSkeneResult"} <= set(aggregation.__all__)
