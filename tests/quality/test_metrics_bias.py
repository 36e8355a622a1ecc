"""Per-annotator bias metrics against brute-force pure-Python references (loops, dicts; scipy/statsmodels for the
p-values, q-values and intervals), planted signals, hand-derived values and edge cases."""

from __future__ import annotations

import ast
import inspect
from collections import Counter, defaultdict

import numpy as np
import pytest
from scipy import stats as sp_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from numeric import (
    GoldAccuracy,
    PositionBias,
    SelfConsistency,
    VerbosityBias,
    agreement_with_reference,
    bias,
    chance_agreement,
    gold_accuracy,
    position_bias,
    random_clicker_test,
    self_consistency,
    stats,
    verbosity_bias,
)

SEEDS = (0, 1, 2, 3)
NAN = float("nan")


def assert_same(actual: np.ndarray, expected: list[float] | np.ndarray, rtol: float = 1e-12) -> None:
    """Equal shapes and values (NaN where expected NaN); integer results compared exactly."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    if np.issubdtype(actual.dtype, np.integer):
        assert actual.dtype == np.int64
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0, equal_nan=True)


def ref_binomial_p(k: int, n: int, p: float = 0.5, alternative: str = "two-sided") -> float:
    return 1.0 if n == 0 else float(sp_stats.binomtest(k, n, p, alternative=alternative).pvalue)


def ref_bh(p_values: list[float], tested: list[bool]) -> list[float]:
    """statsmodels' BH over the tested entries only; NaN for the rest."""
    chosen = [p for p, t in zip(p_values, tested, strict=True) if t]
    adjusted = iter(multipletests(chosen, method="fdr_bh")[1]) if chosen else iter(())
    return [float(next(adjusted)) if t else NAN for t in tested]


def ratio(a: float, b: float) -> float:
    return a / b if b else NAN


def random_judgments(seed: int, n_annotators: int = 12, size: int = 900) -> dict[str, np.ndarray]:
    """Random judgments; annotators 0 and the last one never appear (rows with no data)."""
    rng = np.random.default_rng(seed)
    active = np.arange(1, n_annotators - 1)
    # Skewed activity: some annotators have a handful of judgments, others hundreds.
    weights = rng.dirichlet(np.full(active.size, 0.7))
    annotators = rng.choice(active, size=size, p=weights)
    lean = rng.uniform(0.2, 0.8, n_annotators)  # per-annotator tendency, so some p-values are small
    return {
        "annotators": annotators,
        "flag_a": rng.random(size) < lean[annotators],
        "flag_b": rng.random(size) < 0.8,
        "items": rng.integers(0, 40, size),
        "labels": rng.integers(0, 3, size),
        "reference": np.where(rng.random(size) < 0.6, rng.integers(0, 3, size), rng.integers(0, 2, size)),
    }


# Position bias -----------------------------------------------------------------------------------------------------


def ref_position_bias(annotators, chose_left, decisive, n_annotators: int) -> dict[str, list[float]]:
    n = [0] * n_annotators
    left = [0] * n_annotators
    for a, is_left, is_decisive in zip(annotators, chose_left, decisive, strict=True):
        if is_decisive:
            n[a] += 1
            left[a] += int(is_left)
    p = [ref_binomial_p(left[a], n[a]) for a in range(n_annotators)]
    return {
        "n": n,
        "left": left,
        "rate": [ratio(left[a], n[a]) for a in range(n_annotators)],
        "p_value": p,
        "q_value": ref_bh(p, [count > 0 for count in n]),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_position_bias_matches_reference(seed: int) -> None:
    data = random_judgments(seed)
    got = position_bias(data["annotators"], data["flag_a"], data["flag_b"], n_annotators=12)
    expected = ref_position_bias(data["annotators"], data["flag_a"], data["flag_b"], 12)
    assert isinstance(got, PositionBias)
    for field, values in expected.items():
        assert_same(getattr(got, field), values, rtol=1e-10)
    assert got.n[0] == 0 and np.isnan(got.q_value[0]) and got.p_value[0] == 1.0


def test_position_bias_detects_a_planted_left_preference() -> None:
    rng = np.random.default_rng(7)
    # Annotator 0 picks left in 210 of 300 decisive judgments (70%); annotators 1-3 in 150, 160 and 140 (fair).
    # Each also has 40 non-decisive judgments marked chose_left, which must be ignored.
    lefts = (210, 150, 160, 140)
    annotators = np.repeat(np.arange(4), 340)
    decisive = np.tile(np.r_[np.ones(300, dtype=bool), np.zeros(40, dtype=bool)], 4)
    chose_left = np.concatenate([np.r_[rng.permutation(np.arange(300) < k), np.ones(40, dtype=bool)] for k in lefts])
    # Judgments arrive interleaved, not grouped by annotator.
    order = rng.permutation(annotators.size)
    annotators, decisive, chose_left = annotators[order], decisive[order], chose_left[order]
    got = position_bias(annotators, chose_left, decisive, n_annotators=4)
    assert_same(got.n, [300, 300, 300, 300])
    assert_same(got.left, list(lefts))
    assert got.rate[0] == pytest.approx(0.7)
    assert got.q_value[0] < 0.01
    assert (got.q_value[1:] > 0.05).all()
    assert got.p_value[1] == 1.0  # exactly half: nothing more balanced is possible


def test_position_bias_edge_cases() -> None:
    # Empty input: every annotator has a row with n = 0.
    got = position_bias([], [], [], n_annotators=3)
    assert_same(got.n, [0, 0, 0])
    assert_same(got.left, [0, 0, 0])
    assert_same(got.rate, [NAN] * 3)
    assert_same(got.p_value, [1.0] * 3)
    assert_same(got.q_value, [NAN] * 3)
    # No decisive judgments at all.
    got = position_bias([0, 1, 1], [True, True, False], [False, False, False], n_annotators=2)
    assert_same(got.n, [0, 0])
    assert_same(got.q_value, [NAN, NAN])
    # One annotator: the q-value equals the p-value (m = 1).
    got = position_bias([0] * 10, [True] * 9 + [False], [True] * 10, n_annotators=1)
    assert_same(got.p_value, [22 / 1024])  # 2 * (1 + 10) / 2^10
    assert_same(got.q_value, got.p_value)
    # No annotators at all.
    assert position_bias([], [], [], n_annotators=0).n.shape == (0,)


# Verbosity bias ----------------------------------------------------------------------------------------------------


def ref_verbosity_bias(annotators, longer, baseline, n_annotators: int) -> dict[str, list[float]]:
    n = [0] * n_annotators
    n_longer = [0] * n_annotators
    n_baseline = [0] * n_annotators
    b = [0] * n_annotators
    c = [0] * n_annotators
    for a, own, base in zip(annotators, longer, baseline, strict=True):
        n[a] += 1
        n_longer[a] += int(own)
        n_baseline[a] += int(base)
        b[a] += int(own and not base)
        c[a] += int(base and not own)
    rate = [ratio(n_longer[a], n[a]) for a in range(n_annotators)]
    baseline_rate = [ratio(n_baseline[a], n[a]) for a in range(n_annotators)]
    p = [ref_binomial_p(b[a], b[a] + c[a]) for a in range(n_annotators)]
    return {
        "n": n,
        "rate": rate,
        "baseline_rate": baseline_rate,
        "excess": [r - s for r, s in zip(rate, baseline_rate, strict=True)],
        "discordant_longer": b,
        "discordant_shorter": c,
        "p_value": p,
        "q_value": ref_bh(p, [count > 0 for count in n]),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_verbosity_bias_matches_reference(seed: int) -> None:
    data = random_judgments(seed)
    got = verbosity_bias(data["annotators"], data["flag_a"], data["flag_b"], n_annotators=12)
    expected = ref_verbosity_bias(data["annotators"], data["flag_a"], data["flag_b"], 12)
    assert isinstance(got, VerbosityBias)
    for field, values in expected.items():
        assert_same(getattr(got, field), values, rtol=1e-10)


def test_verbosity_bias_detects_a_planted_length_preference() -> None:
    rng = np.random.default_rng(3)
    # Baseline prefers the longer response on 100 of 200 items for every annotator.
    baseline = np.tile(np.r_[np.ones(100, dtype=bool), np.zeros(100, dtype=bool)], 3)

    def answers(longer_when_baseline_longer: int, longer_when_baseline_shorter: int) -> np.ndarray:
        first = rng.permutation(
            np.r_[np.ones(longer_when_baseline_longer), np.zeros(100 - longer_when_baseline_longer)]
        )
        second = rng.permutation(
            np.r_[np.ones(longer_when_baseline_shorter), np.zeros(100 - longer_when_baseline_shorter)]
        )
        return np.r_[first, second].astype(bool)

    # 0: prefers longer 80% regardless of the baseline (b = 80, c = 20).
    # 1: agrees with the baseline 90% of the time, discordant both ways equally (b = c = 10).
    # 2: prefers longer 60% with b = 15, c = 5 - an excess of 0.1 on few discordant pairs.
    chose_longer = np.r_[answers(80, 80), answers(90, 10), answers(95, 15)]
    annotators = np.repeat(np.arange(3), 200)
    got = verbosity_bias(annotators, chose_longer, baseline, n_annotators=3)
    assert_same(got.discordant_longer, [80, 10, 15])
    assert_same(got.discordant_shorter, [20, 10, 5])
    np.testing.assert_allclose(got.rate, [0.8, 0.5, 0.55])
    np.testing.assert_allclose(got.baseline_rate, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(got.excess, [0.3, 0.0, 0.05], atol=1e-15)
    assert got.q_value[0] < 0.01
    assert got.p_value[1] == 1.0
    assert got.q_value[1] > 0.05
    # 15 of 20 discordant: two-sided p = 2 P[X >= 15] for X ~ Bin(20, 1/2) = 2 * 21700 / 2^20.
    assert got.p_value[2] == pytest.approx(2 * 21700 / 2**20, rel=1e-12)


def test_verbosity_bias_is_paired_not_a_test_against_one_half() -> None:
    # Longer responses really are better here: the baseline picks longer 80% of the time and so does the annotator,
    # on the same items. No discordant pair -> no evidence of bias, despite a longer-rate of 0.8.
    baseline = np.r_[np.ones(160, dtype=bool), np.zeros(40, dtype=bool)]
    got = verbosity_bias(np.zeros(200, dtype=int), baseline.copy(), baseline, n_annotators=1)
    assert got.rate[0] == pytest.approx(0.8)
    assert got.excess[0] == 0.0
    assert got.p_value[0] == 1.0
    # McNemar by hand: b = 9, c = 1 -> 2 (1 + 10) / 2^10.
    own = np.r_[np.ones(9, dtype=bool), np.zeros(1, dtype=bool)]
    got = verbosity_bias(np.zeros(10, dtype=int), own, ~own, n_annotators=1)
    assert got.p_value[0] == pytest.approx(22 / 1024, rel=1e-13)


def test_verbosity_bias_edge_cases() -> None:
    got = verbosity_bias([], [], [], n_annotators=2)
    assert_same(got.n, [0, 0])
    assert_same(got.rate, [NAN, NAN])
    assert_same(got.excess, [NAN, NAN])
    assert_same(got.p_value, [1.0, 1.0])
    assert_same(got.q_value, [NAN, NAN])
    got = verbosity_bias([1, 1], [True, False], [True, False], n_annotators=2)
    assert_same(got.n, [0, 2])
    assert_same(got.q_value, [NAN, 1.0])


# Self-consistency --------------------------------------------------------------------------------------------------


def ref_self_consistency(annotators, items, labels, n_annotators: int) -> dict[str, list[float]]:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for a, item, label in zip(annotators, items, labels, strict=True):
        groups[(int(a), int(item))].append(int(label))
    pairs = [0] * n_annotators
    agreeing = [0] * n_annotators
    for (a, _), given in groups.items():
        for j, first in enumerate(given):
            for m, second in enumerate(given):
                if j != m:
                    pairs[a] += 1
                    agreeing[a] += int(first == second)
    return {
        "pairs": pairs,
        "agreeing": agreeing,
        "rate": [ratio(agreeing[a], pairs[a]) for a in range(n_annotators)],
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_self_consistency_matches_reference(seed: int) -> None:
    data = random_judgments(seed)
    got = self_consistency(data["annotators"], data["items"], data["labels"], n_annotators=12)
    expected = ref_self_consistency(data["annotators"], data["items"], data["labels"], 12)
    assert isinstance(got, SelfConsistency)
    assert sum(expected["pairs"]) > 100  # the random data does repeat items
    for field, values in expected.items():
        assert_same(getattr(got, field), values)


def test_self_consistency_hand_example_and_edges() -> None:
    # Annotator 0: item 5 three times (labels 1, 1, 2 -> 6 ordered pairs, 2 agreeing), item 7 twice (0, 0 -> 2 of 2),
    # item 9 once (nothing). Annotator 1: only single judgments. Item ids are shared across annotators on purpose.
    annotators = [0, 1, 0, 0, 1, 0, 0, 0]
    items = [5, 5, 7, 5, 7, 9, 5, 7]
    labels = [1, 1, 0, 1, 2, 2, 2, 0]
    got = self_consistency(annotators, items, labels, n_annotators=3)
    assert_same(got.pairs, [8, 0, 0])
    assert_same(got.agreeing, [4, 0, 0])
    assert_same(got.rate, [0.5, NAN, NAN])
    got = self_consistency([], [], [], n_annotators=2)
    assert_same(got.pairs, [0, 0])
    assert_same(got.rate, [NAN, NAN])


# Gold accuracy, agreement, chance agreement, random clickers -------------------------------------------------------


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("seed", SEEDS)
def test_gold_accuracy_matches_reference(seed: int, level: float) -> None:
    data = random_judgments(seed)
    got = gold_accuracy(data["annotators"], data["flag_a"], n_annotators=12, level=level)
    assert isinstance(got, GoldAccuracy)
    n = Counter(int(a) for a in data["annotators"])
    correct = Counter(int(a) for a, hit in zip(data["annotators"], data["flag_a"], strict=True) if hit)
    assert_same(got.n, [n[a] for a in range(12)])
    assert_same(got.correct, [correct[a] for a in range(12)])
    assert_same(got.rate, [ratio(correct[a], n[a]) for a in range(12)])
    for a in range(12):
        if n[a]:
            low, high = proportion_confint(correct[a], n[a], alpha=1 - level, method="wilson")
            assert got.low[a] == pytest.approx(low, rel=1e-12, abs=1e-15)
            assert got.high[a] == pytest.approx(high, rel=1e-12, abs=1e-15)
        else:
            assert np.isnan(got.low[a]) and np.isnan(got.high[a])


def test_gold_accuracy_hand_values() -> None:
    # 10 of 10 correct: Wilson lower bound n / (n + z^2) with z = 1.95996...
    got = gold_accuracy([0] * 10, [True] * 10, n_annotators=2)
    assert got.low[0] == pytest.approx(10 / (10 + 1.959963984540054**2), rel=1e-13)
    assert got.high[0] == 1.0
    assert got.n[1] == 0 and np.isnan(got.rate[1])


@pytest.mark.parametrize("seed", SEEDS)
def test_agreement_with_reference_matches_reference(seed: int) -> None:
    data = random_judgments(seed)
    n, agreeing, rate = agreement_with_reference(data["annotators"], data["flag_b"], n_annotators=12)
    ref_n = [0] * 12
    ref_agreeing = [0] * 12
    for a, hit in zip(data["annotators"], data["flag_b"], strict=True):
        ref_n[a] += 1
        ref_agreeing[a] += int(hit)
    assert_same(n, ref_n)
    assert_same(agreeing, ref_agreeing)
    assert_same(rate, [ratio(ref_agreeing[a], ref_n[a]) for a in range(12)])


def ref_chance_agreement(annotators, labels, reference, n_annotators: int, n_classes: int) -> list[float]:
    result = []
    for a in range(n_annotators):
        own = [int(lab) for ann, lab in zip(annotators, labels, strict=True) if ann == a]
        ref = [int(r) for ann, r in zip(annotators, reference, strict=True) if ann == a]
        if not own:
            result.append(NAN)
            continue
        result.append(sum((own.count(k) / len(own)) * (ref.count(k) / len(ref)) for k in range(n_classes)))
    return result


@pytest.mark.parametrize("seed", SEEDS)
def test_chance_agreement_matches_reference(seed: int) -> None:
    data = random_judgments(seed)
    got = chance_agreement(data["annotators"], data["labels"], data["reference"], n_annotators=12, n_classes=3)
    assert_same(got, ref_chance_agreement(data["annotators"], data["labels"], data["reference"], 12, 3))


def test_chance_agreement_hand_example() -> None:
    # Labels (0, 0, 1, 1) -> (1/2, 1/2); reference (0, 1, 0, 0) -> (3/4, 1/4): 1/2 * 3/4 + 1/2 * 1/4 = 1/2.
    got = chance_agreement([0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0], n_annotators=2, n_classes=3)
    assert_same(got, [0.5, NAN])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        chance_agreement([0], [3], [0], n_annotators=1, n_classes=3)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_clicker_test_matches_reference(seed: int) -> None:
    data = random_judgments(seed)
    chance = chance_agreement(data["annotators"], data["labels"], data["reference"], n_annotators=12, n_classes=3)
    agrees = data["labels"] == data["reference"]
    got = random_clicker_test(data["annotators"], agrees, chance, n_annotators=12)
    n = Counter(int(a) for a in data["annotators"])
    hits = Counter(int(a) for a, hit in zip(data["annotators"], agrees, strict=True) if hit)
    expected = [ref_binomial_p(hits[a], n[a], chance[a], "greater") if n[a] else 1.0 for a in range(12)]
    assert_same(got, expected, rtol=1e-10)


def test_random_clicker_test_separates_a_clicker_from_a_careful_annotator() -> None:
    # Both see 100 items with chance agreement 0.5; the careful one agrees 90 times, the clicker 52 times.
    annotators = np.repeat([0, 1], 100)
    agrees = np.r_[np.arange(100) < 90, np.arange(100) < 52]
    got = random_clicker_test(annotators, agrees, [0.5, 0.5, NAN], n_annotators=3)
    assert got[0] < 1e-10
    assert got[1] > 0.3
    assert got[2] == 1.0  # no judgments; NaN chance is fine there
    with pytest.raises(ValueError, match="chance"):
        random_clicker_test([0], [True], [NAN], n_annotators=1)
    with pytest.raises(ValueError, match="shape"):
        random_clicker_test([0], [True], [0.5, 0.5], n_annotators=1)


# Validation and the module rules -----------------------------------------------------------------------------------


def test_malformed_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        position_bias([0, 2], [True, True], [True, True], n_annotators=2)
    with pytest.raises(ValueError, match="shape"):
        position_bias([0, 1], [True], [True, True], n_annotators=2)
    with pytest.raises(ValueError, match="booleans"):
        gold_accuracy([0, 1], [0, 2], n_annotators=2)
    with pytest.raises(ValueError, match="integers"):
        agreement_with_reference([0.5], [True], n_annotators=1)
    with pytest.raises(ValueError, match="integer codes"):
        self_consistency([0], [1], [0.5], n_annotators=1)
    with pytest.raises(ValueError, match="negative"):
        agreement_with_reference([], [], n_annotators=-1)


def test_flags_accept_zero_one_integers() -> None:
    as_bool = position_bias([0, 0, 1], [True, False, True], [True, True, True], n_annotators=2)
    as_int = position_bias([0, 0, 1], [1, 0, 1], [1, 1, 1], n_annotators=2)
    assert_same(as_int.left, as_bool.left)
    assert_same(as_int.p_value, as_bool.p_value)


def loops(tree: ast.AST) -> list[ast.AST]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.For | ast.AsyncFor | ast.While | ast.comprehension)]


@pytest.mark.parametrize("module", [stats, bias])
def test_modules_are_pure_numpy(module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    assert "import django" not in source
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or "").split(".")[0])
    assert imported <= {"__future__", "dataclasses", "typing", "numpy", ".stats"}


def test_bias_has_no_loops() -> None:
    assert loops(ast.parse(inspect.getsource(bias))) == []


def test_stats_loops_only_over_row_blocks() -> None:
    # The one permitted loop: binomial_test walks over blocks of rows to bound memory, never over single tests.
    tree = ast.parse(inspect.getsource(stats))
    found = loops(tree)
    assert len(found) == 1
    (loop,) = found
    assert isinstance(loop, ast.For)
    binomial = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "binomial_test")
    assert loop in list(ast.walk(binomial))
    assert ast.unparse(loop.iter) == "np.split(order, starts)"
