"""Reads and data shaping for the manager's quality page and its CSV downloads.

Every function takes a project already resolved through ``labeling.tenancy.access_project`` and scopes each
query with ``.for_org(project.organization_id)`` as well. The page costs a constant number of queries, whatever
the number of annotators, snapshots or models. Figures are rounded here (the templates only print), and the
annotator table sorts by an allow-list of columns: user input only ever picks a key of ``SORTS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.db.models import F, IntegerField, Value
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.safestring import SafeString

from labeling.models import Label, Project, ProjectKind
from labeling.selectors import project_stored_questions
from pages import charts
from quality.models import AnnotatorScore, Flag, ModelRanking, ProjectQuality, QualityJob, RecomputeStatus
from quality.selectors import latest_quality, model_rankings, quality_history, quality_job
from quality.services import ALPHA, EFFECT, MIN_FLAG_JUDGMENTS, RANDOM_ALPHA, RANDOM_MARGIN, progress_key
from quality.services.form_figures import STRAIGHT_LINING_MIN, STRAIGHT_LINING_SHARE

DASH = "—"
_FLAG_COUNT = sum((Cast(name, IntegerField()) for name in Flag.values), Value(0))

#: The annotator table's sortable columns: key (the only thing read from ``?sort=``), heading, ordering.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("annotator", "Annotator"),
    ("judgments", "Judgments"),
    ("seconds", "Median seconds"),
    ("gold", "Gold accuracy"),
    ("agreement", "Agreement vs chance"),
    ("kappa", "Mean κ vs peers"),
    ("skill", "Skill (Dawid-Skene)"),
    ("position", "Left-choice rate"),
    ("verbosity", "Longer-wins rate"),
    ("flags", "Flags"),
    ("paused", "Status"),
)
SORTS: dict[str, Any] = {
    "annotator": F("annotator__username"),
    "judgments": F("n_judgments"),
    "seconds": F("median_seconds"),
    "gold": F("gold_accuracy"),
    "agreement": F("agreement"),
    "kappa": F("kappa_mean"),
    "skill": F("skill"),
    "position": F("position_left_rate"),
    "verbosity": F("verbosity_rate"),
    "flags": _FLAG_COUNT,
    "paused": F("paused_at"),
    "questions": F("straight_lining_share"),
}
DEFAULT_SORT = ("annotator", "asc")


def flag_help(project: Project, *, pairwise: bool, questions: bool) -> list[tuple[str, str]]:
    """What each flag this project can raise means, with the thresholds the recompute actually uses: position and
    verbosity bias on pairwise projects, straight-lining on projects with questions."""
    tests = f"Benjamini-Hochberg q < {ALPHA:g}, at least {MIN_FLAG_JUDGMENTS} judgments"
    entries = [
        (
            Flag.RANDOM_CLICKER,
            f"Agreement with the reference label (the other judgments of the task, or its gold answer) is "
            f"significantly below chance plus {RANDOM_MARGIN:.0%} (exact one-sided binomial test, Benjamini-Hochberg "
            f"q < {RANDOM_ALPHA:g}, at least {MIN_FLAG_JUDGMENTS} judgments).",
        ),
        (
            Flag.POSITION_BIASED,
            f"Chooses the response shown on the left significantly more or less often than half the time, by at "
            f"least {EFFECT:.0%} ({tests}).",
        ),
        (
            Flag.VERBOSITY_BIASED,
            f"Gives the longer response the win more often than the consensus does on the same tasks, by at least "
            f"{EFFECT:.0%} (exact McNemar test, {tests}).",
        ),
        (Flag.TOO_FAST, f"Median time per judgment below {project.too_fast_seconds:g} seconds."),
        (
            Flag.STRAIGHT_LINING,
            f"At least {STRAIGHT_LINING_SHARE:.0%} of {STRAIGHT_LINING_MIN} or more judgments gave every response "
            "the same rating on every per-response rating question (three or more ratings each).",
        ),
        (
            Flag.LOW_GOLD_ACCURACY,
            f"At least {project.pause_min_gold} gold judgments, and even the upper end of the 95% interval of gold "
            f"accuracy is below {project.pause_gold_threshold:.0%}.",
        ),
    ]
    left_out = set() if pairwise else {Flag.POSITION_BIASED, Flag.VERBOSITY_BIASED}
    if not questions:
        left_out.add(Flag.STRAIGHT_LINING)
    return [(flag.label, text) for flag, text in entries if flag not in left_out]


# --- Formatting ---------------------------------------------------------------------------------------------------
def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def percent(value: float | None, digits: int = 0) -> str:
    return f"{value:.{digits}%}" if _ok(value) else DASH


def number(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if _ok(value) else DASH


def q_value(value: float | None) -> str:
    if not _ok(value):
        return DASH
    return "q < 0.001" if value < 0.001 else f"q = {value:.3f}"  # type: ignore[operator]


def when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else DASH


def person(user: Any) -> str:
    if user is None:
        return DASH
    return user.get_full_name() or user.get_username()


# --- The annotator table ------------------------------------------------------------------------------------------
def annotator_sort(sort: str | None, direction: str | None) -> tuple[str, str]:
    """The (column, direction) to sort by: an allowed column or the default order, never the raw input."""
    if sort not in SORTS:
        return DEFAULT_SORT
    return sort, "desc" if direction == "desc" else "asc"  # type: ignore[return-value]


def sorted_scores(*, project: Project, sort: str, direction: str) -> list[AnnotatorScore]:
    """The project's annotator scores in one query; empty figures sort last either way."""
    expression = SORTS[sort]
    ordering = expression.desc(nulls_last=True) if direction == "desc" else expression.asc(nulls_last=True)
    return list(
        AnnotatorScore.objects.for_org(project.organization_id)
        .filter(project=project)
        .select_related("annotator", "unpaused_by")
        .order_by(ordering, "annotator__username", "id")
    )


@dataclass(frozen=True)
class Header:
    key: str
    title: str
    query: str  # the link's query string: this column, the other direction when it is the current one
    aria_sort: str  # "ascending" / "descending" on the current column, "" elsewhere


#: Columns about the two sides of a pairwise task: shown for pairwise projects only.
PAIRWISE_COLUMNS = ("position", "verbosity")


def headers(sort: str, direction: str, *, pairwise: bool = True, questions: bool = False) -> list[Header]:
    result = []
    columns = [(key, title) for key, title in COLUMNS if pairwise or key not in PAIRWISE_COLUMNS]
    if questions:
        columns.insert(columns.index(("flags", "Flags")), ("questions", "Questions"))
    for key, title in columns:
        current = key == sort
        toggled = "desc" if current and direction == "asc" else "asc"
        aria = ("ascending" if direction == "asc" else "descending") if current else ""
        result.append(Header(key, title, urlencode({"sort": key, "dir": toggled}), aria))
    return result


@dataclass(frozen=True)
class AnnotatorRow:
    score_id: int
    name: str
    email: str
    judgments: int
    seconds: str
    gold: str
    gold_detail: str
    agreement: str
    agreement_detail: str
    kappa: str
    skill: str
    position: str
    position_detail: str
    verbosity: str
    verbosity_detail: str
    questions: list[str]
    flags: list[str]
    paused: bool
    pause_text: str
    pause_reason: str
    unpause_text: str


def annotator_row(score: AnnotatorScore) -> AnnotatorRow:
    user = score.annotator
    gold_detail = (
        f"95% CI {percent(score.gold_low)} to {percent(score.gold_high)}, n = {score.gold_n}" if score.gold_n else ""
    )
    agreement_detail = f"chance {percent(score.chance_agreement)}, n = {score.agreement_n}" if score.agreement_n else ""
    unpause_text = ""
    if score.unpaused_at:
        unpause_text = f"Pause lifted by {person(score.unpaused_by)} on {when(score.unpaused_at)}"
    return AnnotatorRow(
        score_id=score.pk,
        name=person(user),
        email=user.email if user.email != user.get_username() else "",
        judgments=score.n_judgments,
        seconds=number(score.median_seconds, 1),
        gold=percent(score.gold_accuracy),
        gold_detail=gold_detail,
        agreement=percent(score.agreement),
        agreement_detail=agreement_detail,
        kappa=number(score.kappa_mean),
        skill=percent(score.skill),
        position=percent(score.position_left_rate),
        position_detail=f"{q_value(score.position_q)}, n = {score.position_n}" if score.position_n else "",
        verbosity=percent(score.verbosity_rate),
        verbosity_detail=(
            f"baseline {percent(score.verbosity_baseline)}, {q_value(score.verbosity_q)}, n = {score.verbosity_n}"
            if score.verbosity_n
            else ""
        ),
        questions=question_scores(score),
        flags=[Flag(name).label for name in score.flags],
        paused=score.paused,
        pause_text=f"Paused since {when(score.paused_at)}" if score.paused else "Active",
        pause_reason=score.pause_reason,
        unpause_text=unpause_text,
    )


def question_scores(score: AnnotatorScore) -> list[str]:
    """The annotator's figures per question: a rating's leniency (with its 95% interval), a ranking's tau."""
    lines = []
    for key, figures in sorted((score.form_scores or {}).items()):
        if "leniency" in figures and _ok(figures["leniency"]):
            interval = ""
            if _ok(figures.get("low")) and _ok(figures.get("high")):
                interval = f" [{figures['low']:+.2f}, {figures['high']:+.2f}]"
            lines.append(f"{key}: leniency {figures['leniency']:+.2f}{interval}, n = {figures['n']}")
        elif "tau" in figures and _ok(figures["tau"]):
            lines.append(f"{key}: \N{GREEK SMALL LETTER TAU} {figures['tau']:.2f} vs consensus, n = {figures['n']}")
    if score.straight_lining_share is not None:
        lines.append(f"straight-lined {percent(score.straight_lining_share)}")
    return lines


def question_rows(*, project: Project, snapshot: ProjectQuality | None) -> list[tuple[str, str, str, str]]:
    """Each question of the form: (key, title, agreement, count) from the latest snapshot."""
    figures = snapshot.questions if snapshot is not None else {}
    rows = []
    for spec in project_stored_questions(project=project):
        found = figures.get(spec.key, {})
        if spec.kind == "rating":
            agreement = (
                f"\N{GREEK SMALL LETTER ALPHA} {number(found.get('alpha_interval'))} interval, "
                f"{number(found.get('alpha_ordinal'))} ordinal"
            )
            count = f"{found.get('n', 0)} ratings"
        elif spec.kind == "ranking":
            agreement = f"Kendall's W {number(found.get('kendall_w'))}"
            count = f"{found.get('n', 0)} rankings"
        elif spec.primary:
            agreement = "see the figures above"
            count = f"{found.get('n', 0)} answers" if found else ""
        else:
            agreement = DASH
            count = f"{found.get('n', 0)} answers"
        rows.append((spec.key, f"{spec.title} ({spec.kind}{', primary' if spec.primary else ''})", agreement, count))
    return rows


def project_score(*, project: Project, score_id: int) -> AnnotatorScore | None:
    """One annotator score of this project (``None`` for another project's, another organization's or none)."""
    return AnnotatorScore.objects.for_org(project.organization_id).filter(project=project, pk=score_id).first()


# --- The snapshot and the job ---------------------------------------------------------------------------------------
def snapshot_figures(snapshot: ProjectQuality) -> list[tuple[str, str]]:
    fleiss = number(snapshot.fleiss_kappa)
    if _ok(snapshot.fleiss_kappa):
        fleiss += f" (on {snapshot.fleiss_items} task{'s' if snapshot.fleiss_items != 1 else ''})"
    return [
        ("Fleiss' κ", fleiss),
        ("Krippendorff's \N{GREEK SMALL LETTER ALPHA}", number(snapshot.krippendorff_alpha)),
        ("Percent agreement", percent(snapshot.percent_agreement, 1)),
        ("Completion", percent(snapshot.completion)),
        ("Judgments", str(snapshot.n_judgments)),
        ("Tasks", str(snapshot.n_tasks)),
        ("Annotators", str(snapshot.n_annotators)),
        ("Computed", when(snapshot.computed_at)),
        ("Took", f"{snapshot.seconds:.1f} s"),
    ]


@dataclass(frozen=True)
class JobState:
    status: str
    is_running: bool
    runs: int
    started: str
    finished: str
    error: str
    step: str
    progress: float | None

    @property
    def progress_percent(self) -> str:
        return percent(self.progress)


def job_state(job: QualityJob | None) -> JobState | None:
    if job is None:
        return None
    running = job.status == RecomputeStatus.RUNNING
    cached = cache.get(progress_key(job.project_id)) if running else None
    step, progress = job.step, job.progress
    if isinstance(cached, dict):
        step, progress = str(cached.get("step", step)), cached.get("progress", progress)
    return JobState(
        status=job.get_status_display(),
        is_running=running,
        runs=job.runs,
        started=when(job.started_at),
        finished=when(job.finished_at),
        error=job.error,
        step=step if running else "",
        progress=float(progress) if running and isinstance(progress, int | float) else None,
    )


# --- Charts -------------------------------------------------------------------------------------------------------
def project_labels(*, project: Project) -> list[tuple[str, str]]:
    """(value, title) of the project's labels in their order (the order of stored confusion matrices)."""
    return list(
        Label.objects.for_org(project.organization_id)
        .filter(project=project)
        .order_by("position", "id")
        .values_list("value", "title")
    )


def label_rows(labels: Sequence[tuple[str, str]], counts: dict[str, int]) -> list[tuple[str, str, int]]:
    """(value, title, count) in label order; values counted but no longer labels come last."""
    known = {value for value, _ in labels}
    rows = [(value, title, int(counts.get(value, 0))) for value, title in labels]
    return rows + [(value, "", int(count)) for value, count in sorted(counts.items()) if value not in known]


def confusion_matrix(labels: Sequence[tuple[str, str]], snapshot: ProjectQuality | None) -> list[list[int]] | None:
    """The snapshot's confusion matrix, if its shape still matches the project's labels."""
    matrix = snapshot.confusion if snapshot else None
    k = len(labels)
    if not matrix or len(matrix) != k or any(len(row) != k for row in matrix):
        return None
    return [[int(count) for count in row] for row in matrix]


def agreement_chart(history: Sequence[ProjectQuality]) -> SafeString:
    return charts.line_chart(
        title="Agreement over time",
        x_labels=[when(row.computed_at) for row in history],
        series=[
            ("Fleiss' κ", [row.fleiss_kappa for row in history]),
            ("Krippendorff's \N{GREEK SMALL LETTER ALPHA}", [row.krippendorff_alpha for row in history]),
            ("Percent agreement", [row.percent_agreement for row in history]),
        ],
        y_title="Coefficient",
        x_title="Snapshot (computed at)",
        percent=(False, False, True),
    )


def labels_chart(rows: Sequence[tuple[str, str, int]]) -> SafeString:
    return charts.bar_chart(title="Label distribution", rows=[(value, count) for value, _, count in rows])


def confusion_chart(labels: Sequence[tuple[str, str]], matrix: list[list[int]] | None) -> SafeString:
    if matrix is None:
        return charts.empty_chart(title="Annotators vs consensus")
    return charts.heatmap(
        title="Annotators vs consensus",
        labels=[value for value, _ in labels],
        matrix=matrix,
        row_title="Consensus label",
        column_title="Label given",
    )


def models_chart(rankings: Sequence[ModelRanking]) -> SafeString:
    return charts.interval_chart(
        title="Model leaderboard",
        rows=[(f"{row.rank}. {row.model_name}", row.theta, row.low, row.high) for row in rankings],
        axis_title="Bradley-Terry strength θ with its 95% bootstrap interval",
    )


# --- The page -------------------------------------------------------------------------------------------------------
@dataclass
class QualityPage:
    project: Project
    figures: list[tuple[str, str]]
    job: JobState | None
    charts: dict[str, SafeString]
    headers: list[Header]
    sort: str
    direction: str
    annotators: list[AnnotatorRow]
    rankings: list[ModelRanking]
    regularised: bool
    stale_confusion: bool
    label_table: list[tuple[str, str, int]]
    flag_help: list[tuple[str, str]]
    questions: list[tuple[str, str, str, str]]
    pairwise: bool


def quality_page(*, project: Project, sort: str | None, direction: str | None) -> QualityPage:
    """Everything the quality page shows, in five queries."""
    sort, direction = annotator_sort(sort, direction)
    history = quality_history(project=project)
    latest = history[-1] if history else None  # the history is oldest first: its last is the latest snapshot
    labels = project_labels(project=project)
    label_table = label_rows(labels, latest.label_counts if latest else {})
    matrix = confusion_matrix(labels, latest)
    rankings = model_rankings(project=project)
    pairwise = project.kind == ProjectKind.PAIRWISE
    questions = question_rows(project=project, snapshot=latest)
    return QualityPage(
        project=project,
        figures=snapshot_figures(latest) if latest else [],
        job=job_state(quality_job(project=project)),
        charts={
            "agreement": agreement_chart(history),
            "labels": labels_chart(label_table),
            "confusion": confusion_chart(labels, matrix),
            "models": models_chart(rankings),
        },
        headers=headers(sort, direction, pairwise=pairwise, questions=bool(questions)),
        sort=sort,
        direction=direction,
        annotators=[annotator_row(s) for s in sorted_scores(project=project, sort=sort, direction=direction)],
        rankings=rankings,
        regularised=any(row.regularised for row in rankings),
        stale_confusion=latest is not None and bool(latest.confusion) and matrix is None,
        label_table=label_table,
        flag_help=flag_help(project, pairwise=pairwise, questions=bool(questions)),
        questions=questions,
        pairwise=pairwise,
    )


# --- CSV downloads --------------------------------------------------------------------------------------------------
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str | int | float:
    """A CSV cell. Text that a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers
    (a negative strength is a number, not a formula); empty figures are empty cells."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 6)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


Table = tuple[list[str], list[list[Any]]]


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def agreement_csv(project: Project) -> Table:
    header = [
        "computed_at",
        "judgments",
        "tasks",
        "annotators",
        "fleiss_kappa",
        "fleiss_tasks",
        "krippendorff_alpha",
        "percent_agreement",
        "completion",
    ]
    rows = [
        [
            row.computed_at,
            row.n_judgments,
            row.n_tasks,
            row.n_annotators,
            row.fleiss_kappa,
            row.fleiss_items,
            row.krippendorff_alpha,
            row.percent_agreement,
            row.completion,
        ]
        for row in quality_history(project=project)
    ]
    return header, rows


def labels_csv(project: Project) -> Table:
    latest = latest_quality(project=project)
    rows = label_rows(project_labels(project=project), latest.label_counts if latest else {})
    total = sum(count for _, _, count in rows)
    return ["label", "title", "count", "share"], [[v, t, c, _share(c, total)] for v, t, c in rows]


def confusion_csv(project: Project) -> Table:
    labels = project_labels(project=project)
    matrix = confusion_matrix(labels, latest_quality(project=project)) or []
    rows = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, count in enumerate(row):
            rows.append([labels[i][0], labels[j][0], count, _share(count, total)])
    return ["consensus_label", "given_label", "count", "row_share"], rows


def annotators_csv(project: Project) -> Table:
    header = [
        "annotator",
        "email",
        "judgments",
        "median_seconds",
        "gold_n",
        "gold_correct",
        "gold_accuracy",
        "gold_low",
        "gold_high",
        "agreement_n",
        "agreement",
        "chance_agreement",
        "kappa_mean",
        "skill",
        "position_n",
        "position_left_rate",
        "position_q",
        "verbosity_n",
        "verbosity_rate",
        "verbosity_baseline",
        "verbosity_q",
        "flags",
        "paused_at",
        "pause_reason",
        "unpaused_at",
        "unpaused_by",
    ]
    rows = [
        [
            s.annotator.get_username(),
            s.annotator.email,
            s.n_judgments,
            s.median_seconds,
            s.gold_n,
            s.gold_correct,
            s.gold_accuracy,
            s.gold_low,
            s.gold_high,
            s.agreement_n,
            s.agreement,
            s.chance_agreement,
            s.kappa_mean,
            s.skill,
            s.position_n,
            s.position_left_rate,
            s.position_q,
            s.verbosity_n,
            s.verbosity_rate,
            s.verbosity_baseline,
            s.verbosity_q,
            " ".join(s.flags),
            s.paused_at,
            s.pause_reason,
            s.unpaused_at,
            s.unpaused_by.get_username() if s.unpaused_by else None,
        ]
        for s in sorted_scores(project=project, sort=DEFAULT_SORT[0], direction=DEFAULT_SORT[1])
    ]
    return header, rows


def models_csv(project: Project) -> Table:
    header = ["rank", "model", "theta", "low", "high", "battles", "wins", "losses", "ties", "regularised"]
    rows = [
        [r.rank, r.model_name, r.theta, r.low, r.high, r.battles, r.wins, r.losses, r.ties, r.regularised]
        for r in model_rankings(project=project)
    ]
    return header, rows


_CSV: dict[str, Callable[[Project], Table]] = {
    "agreement": agreement_csv,
    "labels": labels_csv,
    "confusion": confusion_csv,
    "annotators": annotators_csv,
    "models": models_csv,
}


def csv_table(*, project: Project, chart: str) -> Table | None:
    """The header and rows (cells already neutralised) of one chart's CSV; ``None`` for an unknown chart."""
    build = _CSV.get(chart)
    if build is None:
        return None
    header, rows = build(project)
    return header, [[csv_cell(value) for value in row] for row in rows]
