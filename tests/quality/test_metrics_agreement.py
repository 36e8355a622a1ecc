"""Agreement metrics against published tables and oracle libraries (scikit-learn, statsmodels, krippendorff).

Expected values come from the literature (Wikipedia's Cohen and Fleiss worked examples, a SAS PROC FREQ printout,
Fleiss 1971 Table 1, Krippendorff 2011) or from the oracles on random data; none is copied from this module's output.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections import Counter

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

import numeric
from numeric import agreement
from numeric.agreement import (
    KRIPPENDORFF_LEVELS,
    cohens_kappa,
    fleiss_kappa,
    item_agreement,
    krippendorff_alpha,
    krippendorff_alpha_counts,
    label_counts,
    percent_agreement,
)

NAN = float("nan")
SEEDS = (0, 1, 2, 3, 4)


def table_to_pairs(table: list[list[int]], labels: list[object]) -> tuple[list[object], list[object]]:
    """Expand a confusion table (rows: rater A, columns: rater B) into two parallel label lists."""
    a: list[object] = []
    b: list[object] = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [labels[i]] * count
            b += [labels[j]] * count
    return a, b


def textbook_weighted_kappa(table: list[list[int]], weights: str | None) -> float:
    """Cohen (1968): 1 - sum(w * observed) / sum(w * expected), written out with plain Python loops."""
    k = len(table)
    n = sum(sum(row) for row in table)
    rows = [sum(row) for row in table]
    cols = [sum(table[i][j] for i in range(k)) for j in range(k)]
    observed = expected = 0.0
    for i in range(k):
        for j in range(k):
            if weights is None:
                w = 0.0 if i == j else 1.0
            elif weights == "linear":
                w = abs(i - j) / (k - 1)
            else:
                w = ((i - j) / (k - 1)) ** 2
            observed += w * table[i][j] / n
            expected += w * rows[i] * cols[j] / n**2
    return 1.0 - observed / expected


# --- Cohen's kappa: published examples -------------------------------------------------------------------------------


def test_cohen_wikipedia_example() -> None:
    # Wikipedia "Cohen's kappa": 50 grant proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15; p_o = 0.7, p_e = 0.5.
    a, b = table_to_pairs([[20, 5], [10, 15]], ["yes", "no"])
    assert cohens_kappa(a, b) == pytest.approx(0.4, abs=1e-12)


def test_cohen_sas_example_unweighted_and_linear() -> None:
    # SAS PROC FREQ printout reproduced in statsmodels' test_inter_rater.py: kappa 0.4842, weighted kappa 0.4701 with
    # Cicchetti-Allison (linear) weights.
    table = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]
    a, b = table_to_pairs(table, [1, 2, 3])
    assert cohens_kappa(a, b) == pytest.approx(0.4842, abs=5e-5)
    assert cohens_kappa(a, b, weights="linear") == pytest.approx(0.4701, abs=5e-5)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_textbook_formula_on_explicit_table(weights: str | None) -> None:
    table = [[11, 3, 1, 0], [2, 9, 4, 1], [0, 3, 7, 2], [1, 0, 2, 6]]
    labels = ["none", "mild", "moderate", "severe"]
    a, b = table_to_pairs(table, labels)
    expected = textbook_weighted_kappa(table, weights)
    got = cohens_kappa(a, b, labels=labels, weights=weights)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got == pytest.approx(cohen_kappa_score(a, b, labels=labels, weights=weights), abs=1e-9)


def test_cohen_weights_differ_and_follow_label_order() -> None:
    table = [[11, 3, 1, 0], [2, 9, 4, 1], [0, 3, 7, 2], [1, 0, 2, 6]]
    a, b = table_to_pairs(table, [0, 1, 2, 3])
    kappas = {w: cohens_kappa(a, b, weights=w) for w in (None, "linear", "quadratic")}
    assert len({round(v, 9) for v in kappas.values()}) == 3
    shuffled = [2, 0, 3, 1]
    assert cohens_kappa(a, b, labels=shuffled) == pytest.approx(kappas[None], abs=1e-12)
    assert cohens_kappa(a, b, labels=shuffled, weights="quadratic") == pytest.approx(
        cohen_kappa_score(a, b, labels=shuffled, weights="quadratic"), abs=1e-9
    )
    assert cohens_kappa(a, b, labels=shuffled, weights="quadratic") != pytest.approx(kappas["quadratic"], abs=1e-6)


# --- Cohen's kappa: random differential tests ------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_matches_sklearn_on_random_ints(seed: int, weights: str | None) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    k = int(rng.integers(2, 8))
    a = rng.integers(0, k, n)
    # Correlated second rater: copies the first most of the time.
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))
    assert cohens_kappa(a, b, weights=weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=1e-9)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_matches_sklearn_on_random_strings_with_labels(seed: int, weights: str | None) -> None:
    rng = np.random.default_rng(100 + seed)
    vocabulary = np.array(["bad", "poor", "fair", "good", "great", "unused"])
    n = int(rng.integers(5, 300))
    a = vocabulary[rng.integers(0, 5, n)]
    b = np.where(rng.random(n) < 0.5, a, vocabulary[rng.integers(0, 5, n)])
    labels = list(vocabulary[rng.permutation(vocabulary.size)])  # includes a label nobody used
    got = cohens_kappa(a, b, labels=labels, weights=weights)
    assert got == pytest.approx(cohen_kappa_score(a, b, labels=labels, weights=weights), abs=1e-9)
    # Default labels: sorted union of what was observed.
    assert cohens_kappa(list(a), list(b), weights=weights) == pytest.approx(
        cohen_kappa_score(a, b, weights=weights), abs=1e-9
    )


# --- Cohen's kappa: edge cases ---------------------------------------------------------------------------------------


def test_cohen_edge_cases() -> None:
    with pytest.raises(ValueError, match="different numbers"):
        cohens_kappa([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="weights"):
        cohens_kappa([1, 2], [1, 2], weights="cubic")
    with pytest.raises(ValueError, match="not in labels"):
        cohens_kappa([1, 2, 3], [1, 2, 2], labels=[1, 2])
    with pytest.raises(ValueError, match="repeated"):
        cohens_kappa([1, 2], [1, 2], labels=[1, 2, 1])
    with pytest.raises(ValueError, match="1-D"):
        cohens_kappa([[1, 2]], [[1, 2]])
    assert math.isnan(cohens_kappa([], []))
    assert math.isnan(cohens_kappa([], [], labels=["a", "b"], weights="linear"))
    # Both raters use one and the same label throughout: expected disagreement 0, kappa undefined.
    for weights in (None, "linear", "quadratic"):
        assert math.isnan(cohens_kappa(["x"] * 7, ["x"] * 7, weights=weights))
        assert math.isnan(cohens_kappa(["x"] * 7, ["x"] * 7, labels=["w", "x", "y"], weights=weights))
        assert cohens_kappa(["x", "y", "y", "z"], ["x", "y", "y", "z"], weights=weights) == 1.0
    # Each rater constant but on different labels: chance-level, not undefined.
    assert cohens_kappa(["x"] * 4, ["y"] * 4) == pytest.approx(0.0, abs=1e-12)


# --- Fleiss' kappa ---------------------------------------------------------------------------------------------------

# Fleiss (1971) Table 1: psychiatric diagnoses of 30 patients by 6 raters each (1 depression, 2 personality disorder,
# 3 schizophrenia, 4 neurosis, 5 other), as distributed with R's irr package and statsmodels' tests.
FLEISS_1971_DIAGNOSES = [
    [4, 4, 4, 4, 4, 4],
    [2, 2, 2, 5, 5, 5],
    [2, 3, 3, 3, 3, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3],
    [3, 3, 3, 3, 5, 5],
    [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4],
    [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4],
    [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3],
    [1, 4, 4, 4, 4, 4],
    [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5],
    [1, 1, 1, 1, 1, 2],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 4, 4, 4, 4, 4],
    [2, 2, 4, 5, 5, 5],
    [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4],
    [1, 1, 1, 1, 5, 5],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3],
    [5, 5, 5, 5, 5, 5],
]

# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories; P_bar = 0.378, kappa = 0.210.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def diagnoses_counts() -> list[list[int]]:
    return [[Counter(row)[category] for category in range(1, 6)] for row in FLEISS_1971_DIAGNOSES]


def test_fleiss_1971_table_1() -> None:
    counts = diagnoses_counts()
    assert round(fleiss_kappa(counts), 4) == 0.4302
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(np.array(counts), method="fleiss"), abs=1e-12)


def test_fleiss_wikipedia_example() -> None:
    assert round(fleiss_kappa(WIKIPEDIA_FLEISS), 3) == 0.210
    assert round(percent_agreement(WIKIPEDIA_FLEISS), 3) == 0.378


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_matches_statsmodels_on_random_counts(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n_items = int(rng.integers(1, 300))
    k = int(rng.integers(2, 7))
    raters = int(rng.integers(2, 12))
    # Each item has its own category preferences, so agreement is above chance.
    prefs = rng.dirichlet(np.full(k, 0.5), n_items)
    counts = np.array([rng.multinomial(raters, p) for p in prefs])
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"), abs=1e-9)


def test_fleiss_edge_cases() -> None:
    with pytest.raises(ValueError, match=r"equal totals.*row 2 has total 4"):
        fleiss_kappa([[1, 2], [0, 3], [4, 0], [3, 0]])
    with pytest.raises(ValueError, match="at least 2"):
        fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="at least 2"):
        fleiss_kappa([[0, 0], [0, 0]])
    with pytest.raises(ValueError, match="negative"):
        fleiss_kappa([[3, -1], [1, 1]])
    with pytest.raises(ValueError, match="whole"):
        fleiss_kappa([[1.5, 0.5], [1, 1]])
    with pytest.raises(ValueError, match="shape"):
        fleiss_kappa([1, 2, 3])
    assert math.isnan(fleiss_kappa(np.zeros((0, 3), dtype=int)))
    # Every judgment in one category: P_e = 1, kappa undefined.
    assert math.isnan(fleiss_kappa([[0, 3, 0], [0, 3, 0]]))
    assert fleiss_kappa([[3, 0], [0, 3]]) == 1.0


# --- item_agreement, percent_agreement, label_counts -----------------------------------------------------------------


def ref_item_agreement(row: list[int]) -> float:
    """Agreeing ordered pairs / all ordered pairs, by enumerating the judgments."""
    judgments = [category for category, count in enumerate(row) for _ in range(count)]
    pairs = [(x, y) for i, x in enumerate(judgments) for j, y in enumerate(judgments) if i != j]
    if not pairs:
        return NAN
    return sum(x == y for x, y in pairs) / len(pairs)


@pytest.mark.parametrize("seed", SEEDS)
def test_item_and_percent_agreement_against_enumeration(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    counts = rng.integers(0, 4, size=(int(rng.integers(1, 60)), int(rng.integers(1, 5))))
    counts[0] = 0  # an item nobody judged
    expected = [ref_item_agreement(row) for row in counts.tolist()]
    np.testing.assert_allclose(item_agreement(counts), expected, rtol=0, atol=1e-12, equal_nan=True)
    scored = [v for v in expected if not math.isnan(v)]
    if scored:
        assert percent_agreement(counts) == pytest.approx(sum(scored) / len(scored), abs=1e-12)
    else:
        assert math.isnan(percent_agreement(counts))


def test_percent_agreement_edge_cases() -> None:
    assert item_agreement([[2, 0], [1, 1], [1, 0], [0, 0]]).tolist()[:2] == [1.0, 0.0]
    assert np.isnan(item_agreement([[2, 0], [1, 1], [1, 0], [0, 0]])[2:]).all()
    assert item_agreement(np.zeros((0, 2), dtype=int)).shape == (0,)
    assert math.isnan(percent_agreement([[1, 0], [0, 1], [0, 0]]))
    assert math.isnan(percent_agreement(np.zeros((0, 3), dtype=int)))
    # Unequal totals are fine here (unlike Fleiss' kappa): items weigh equally.
    assert percent_agreement([[3, 0], [1, 1], [1, 0]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="negative"):
        item_agreement([[1, -1]])


@pytest.mark.parametrize("seed", SEEDS)
def test_label_counts_against_counter(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    n_items, n_classes = int(rng.integers(1, 50)), int(rng.integers(1, 6))
    m = int(rng.integers(0, 500))
    items, labels = rng.integers(0, n_items, m), rng.integers(0, n_classes, m)
    tally = Counter(zip(items.tolist(), labels.tolist(), strict=True))
    expected = [[tally[(i, j)] for j in range(n_classes)] for i in range(n_items)]
    got = label_counts(items, labels, n_items=n_items, n_classes=n_classes)
    assert got.dtype == np.int64
    assert got.tolist() == expected


def test_label_counts_edge_cases() -> None:
    assert label_counts([], [], n_items=2, n_classes=3).tolist() == [[0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="Judgment 1"):
        label_counts([0, 2], [0, 0], n_items=2, n_classes=1)
    with pytest.raises(ValueError, match="Judgment 0"):
        label_counts([0, 1], [-1, 0], n_items=2, n_classes=1)
    with pytest.raises(ValueError, match="Judgment 1"):
        label_counts([0, 1], [0, 3], n_items=2, n_classes=3)
    with pytest.raises(ValueError, match="parallel"):
        label_counts([0, 1], [0], n_items=2, n_classes=1)
    with pytest.raises(ValueError, match="integer"):
        label_counts([0.0, 1.0], [0, 0], n_items=2, n_classes=1)
    with pytest.raises(ValueError, match="negative"):
        label_counts([], [], n_items=-1, n_classes=1)


def test_fleiss_from_label_counts_matches_table() -> None:
    diagnoses = np.array(FLEISS_1971_DIAGNOSES)
    items = np.repeat(np.arange(diagnoses.shape[0]), diagnoses.shape[1])
    counts = label_counts(items, diagnoses.ravel() - 1, n_items=30, n_classes=5)
    assert counts.tolist() == diagnoses_counts()


# --- Krippendorff's alpha --------------------------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units, values 1-5.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
KRIPPENDORFF_2011_ALPHAS = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Krippendorff's 3 observers x 15 units example (Wikipedia "Krippendorff's alpha"; krippendorff package docstring).
WIKIPEDIA_KRIPPENDORFF = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]


@pytest.mark.parametrize("level", KRIPPENDORFF_LEVELS)
def test_krippendorff_2011_example(level: str) -> None:
    got = krippendorff_alpha(KRIPPENDORFF_2011, level=level)
    assert round(got, 3) == KRIPPENDORFF_2011_ALPHAS[level]
    oracle = krippendorff.alpha(reliability_data=KRIPPENDORFF_2011, level_of_measurement=level)
    assert got == pytest.approx(oracle, abs=1e-12)


def test_krippendorff_wikipedia_example() -> None:
    assert krippendorff_alpha(WIKIPEDIA_KRIPPENDORFF, level="nominal") == pytest.approx(0.691358, abs=5e-7)
    assert krippendorff_alpha(WIKIPEDIA_KRIPPENDORFF, level="interval") == pytest.approx(0.810845, abs=5e-7)


def random_reliability_data(rng: np.random.Generator, *, zero_based: bool) -> np.ndarray:
    raters, units = int(rng.integers(2, 8)), int(rng.integers(3, 120))
    n_values = int(rng.integers(2, 7))
    truth = rng.integers(0, n_values, units)
    noise = rng.integers(-1, 2, (raters, units)) * (rng.random((raters, units)) < 0.4)
    data = np.clip(truth + noise, 0, n_values - 1).astype(np.float64)
    if not zero_based:
        data = data * 1.5 + 1.0  # non-integer, unevenly anchored values
    data[rng.random((raters, units)) < 0.35] = np.nan  # missing data: unequal raters per unit, some unpairable units
    data[0, 0], data[1, 0], data[0, 1], data[1, 1] = 0.0, 1.0, 1.0, 1.0  # at least 2 distinct pairable values
    return data


@pytest.mark.parametrize("level", KRIPPENDORFF_LEVELS)
@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_matches_package_on_random_missing_data(seed: int, level: str) -> None:
    rng = np.random.default_rng(500 + seed)
    data = random_reliability_data(rng, zero_based=seed % 2 == 0)
    oracle = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(data, level=level) == pytest.approx(oracle, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_ordinal_depends_only_on_order(seed: int) -> None:
    rng = np.random.default_rng(600 + seed)
    data = random_reliability_data(rng, zero_based=True)
    stretched = data**3 + 7.0  # strictly increasing on values >= 0
    assert krippendorff_alpha(stretched, level="ordinal") == pytest.approx(
        krippendorff_alpha(data, level="ordinal"), abs=1e-12
    )
    assert krippendorff_alpha(stretched, level="interval") != pytest.approx(
        krippendorff_alpha(data, level="interval"), abs=1e-9
    )


def test_krippendorff_unpairable_units_are_dropped() -> None:
    data = np.array(KRIPPENDORFF_2011)
    # Add units judged by a single observer (any value, even a new one): alpha must not change.
    extra = np.full((4, 3), np.nan)
    extra[0, 0], extra[2, 1], extra[3, 2] = 9.0, 1.0, 5.0
    widened = np.hstack([data, extra])
    for level in KRIPPENDORFF_LEVELS:
        assert krippendorff_alpha(widened, level=level) == pytest.approx(
            krippendorff.alpha(reliability_data=data, level_of_measurement=level), abs=1e-12
        )


def test_krippendorff_edge_cases() -> None:
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_2011, level="circular")
    with pytest.raises(ValueError, match="shape"):
        krippendorff_alpha([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        krippendorff_alpha([[1.0, np.inf], [1.0, 2.0]])
    with pytest.raises(ValueError, match="negative"):
        krippendorff_alpha([[1.0, -2.0], [1.0, 2.0]], level="ratio")
    for level in KRIPPENDORFF_LEVELS:
        # One rater: nothing is pairable.
        assert math.isnan(krippendorff_alpha([[1.0, 2.0, 3.0]], level=level))
        # No unit with 2 values.
        assert math.isnan(krippendorff_alpha([[1.0, NAN, 3.0], [NAN, 2.0, NAN]], level=level))
        assert math.isnan(krippendorff_alpha(np.zeros((3, 0)), level=level))
        assert math.isnan(krippendorff_alpha(np.full((3, 4), np.nan), level=level))
        # A single distinct value: D_e = 0 (other values only in unpairable units do not count).
        assert math.isnan(krippendorff_alpha([[2.0, 2.0, 7.0], [2.0, 2.0, NAN]], level=level))
        # Perfect agreement with 2 distinct values.
        assert krippendorff_alpha([[1.0, 2.0, NAN], [1.0, 2.0, 2.0], [NAN, 2.0, 2.0]], level=level) == 1.0


# --- module hygiene --------------------------------------------------------------------------------------------------


def test_module_is_pure_numpy_and_loop_free() -> None:
    source = inspect.getsource(agreement)
    assert "import django" not in source
    tree = ast.parse(source)
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "collections", "typing", "numpy"}
    loops = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(
            node, ast.For | ast.AsyncFor | ast.While | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
        )
    ]
    assert loops == [], f"loops or comprehensions at lines {loops}"


def test_public_api_is_exported_and_documented() -> None:
    for name in agreement.__all__:
        obj = getattr(numeric, name)
        assert obj is getattr(agreement, name)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__) > 200, name
    assert {"cohens_kappa", "fleiss_kappa", "krippendorff_alpha", "label_counts", "item_agreement"} <= set(
        agreement.__all__
    )
    assert "percent_agreement" in agreement.__all__


# --- Alpha from value counts (no raters x units array) -------------------------------------------------------------
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_from_counts_equals_alpha_from_the_data_they_summarise(level: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.array([1.0, 2.0, 4.0, 7.0])
    data = values[rng.integers(0, 4, size=(6, 80))]
    data[rng.random(data.shape) < 0.4] = np.nan
    present = ~np.isnan(data)
    units = np.nonzero(present)[1]
    codes = np.searchsorted(values, data[present])
    counts = np.zeros((80, 4), dtype=int)
    np.add.at(counts, (units, codes), 1)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha_counts(counts, values=values, level=level) == pytest.approx(expected, abs=1e-9)


def test_alpha_from_counts_edge_cases() -> None:
    assert np.isnan(krippendorff_alpha_counts(np.zeros((0, 3), dtype=int)))
    assert np.isnan(krippendorff_alpha_counts([[1, 0], [0, 1]]))  # no unit with two values
    assert np.isnan(krippendorff_alpha_counts([[3, 0], [2, 0]]))  # one value only
    assert krippendorff_alpha_counts([[2, 0], [0, 2]]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increasing"):
        krippendorff_alpha_counts([[1, 1]], values=[2, 1])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha_counts([[1, 1]], level="fuzzy")
