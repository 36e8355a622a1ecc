"""The project's form in the customer admin: a "Questions" inline whose rows are checked and saved as one form.

The rows are never saved one by one. On save the whole form goes through ``labeling.questions.questions_parse`` (the
API's rules, and its words: each problem names the question) and is stored by
``labeling.services.project_questions_replace``, which also derives the project's labels from the primary question.
Once the project has judgments the inline is read-only, and says so.

Options and anchors are typed one a line (a JSON list or object is accepted too)::

    options:  value | Title | shortcut      title and shortcut optional; "value | Title |" for no shortcut
    anchors:  rating | Text                 "1 | Very poor"
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from backoffice.base import TenantRolesMixin
from labeling.models import Judgment, Project, ProjectKind, Question, Task
from labeling.questions import PROJECT_KIND_OF_PRIMARY, TEXT_MAX_CHARS, primary_labels, primary_of, questions_parse
from labeling.selectors import project_label_values

OPTIONS_HELP = (
    "choice, multi_choice: one option a line, <code>value | Title | shortcut</code> (title and shortcut optional), "
    "or a JSON list."
)
ANCHORS_HELP = "rating: one anchor a line, <code>rating | Text</code> (e.g. <code>1 | Very poor</code>), or JSON."
#: questions_parse's setting names that the model (and so the form) calls otherwise.
FORM_FIELD_OF = {"min": "min_value", "max": "max_value"}
_PLACE_RE = re.compile(r"^questions\[(\d+)\](?:\.([a-z_]+)(.*))?$")


def project_has_judgments(project: Project | None) -> bool:
    """Whether the project's form is frozen (cached on the instance: the admin asks once per inline permission)."""
    if project is None or project.pk is None:
        return False
    if "_has_judgments" not in project.__dict__:
        project.__dict__["_has_judgments"] = (
            Judgment.objects.for_org(project.organization_id).filter(project=project).exists()
        )
    return project.__dict__["_has_judgments"]


# --- The two text formats ------------------------------------------------------------------------------------
def _lines(text: str) -> list[tuple[int, list[str]]]:
    return [
        (number, [part.strip() for part in line.split("|")])
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def _json(text: str, expected: type, what: str) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ValidationError(f"is not valid JSON; or write {what} one a line") from None
    if not isinstance(value, expected):
        raise ValidationError(f"must be a JSON {'list' if expected is list else 'object'}; or write {what} one a line")
    return value


def options_parse(text: str) -> list[Any]:
    """Options as ``questions_parse`` reads them (it checks each value and title)."""
    if text.startswith("["):
        return _json(text, list, "options")
    options: list[dict[str, str]] = []
    for number, parts in _lines(text):
        if len(parts) > 3:
            raise ValidationError(f"line {number}: write value | Title | shortcut (a title with '|' needs JSON)")
        option = {"value": parts[0], "title": parts[1] if len(parts) > 1 and parts[1] else parts[0]}
        if len(parts) == 3:
            option["shortcut"] = parts[2]
        options.append(option)
    return options


def options_text(options: list[dict[str, Any]]) -> str:
    if any("|" in str(option.get("title", "")) for option in options):
        return json.dumps(options, ensure_ascii=False)
    return "\n".join(f"{o['value']} | {o['title']} | {o.get('shortcut', '')}".rstrip() for o in options)


def anchors_parse(text: str) -> dict[str, Any]:
    if text.startswith("{"):
        return _json(text, dict, "anchors")
    anchors: dict[str, str] = {}
    for number, parts in _lines(text):
        if len(parts) != 2:
            raise ValidationError(f"line {number}: write rating | Text (a text with '|' needs JSON)")
        if parts[0] in anchors:
            raise ValidationError(f"line {number}: rating {parts[0]} is given twice")
        anchors[parts[0]] = parts[1]
    return anchors


def anchors_text(anchors: dict[str, Any]) -> str:
    if any("|" in str(text) for text in anchors.values()):
        return json.dumps(anchors, ensure_ascii=False)
    return "\n".join(f"{rating} | {text}" for rating, text in anchors.items())


class LinesField(forms.CharField):
    """A textarea compared by its text alone (browsers send CRLF), so an untouched row is an unchanged row."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"})

    def to_python(self, value: Any) -> str:
        return super().to_python(value).replace("\r\n", "\n")


# --- One row ----------------------------------------------------------------------------------------------------
class QuestionForm(forms.ModelForm):
    options = LinesField(required=False, help_text=OPTIONS_HELP)
    anchors = LinesField(required=False, help_text=ANCHORS_HELP)
    # Blank for the kinds without a length: only a setting that is given reaches questions_parse.
    min_length = forms.IntegerField(required=False, min_value=0, help_text="text, rewrite: fewest characters")
    max_length = forms.IntegerField(required=False, min_value=1, help_text="text, rewrite: most characters")

    class Meta:
        model = Question
        fields = (
            "key",
            "kind",
            "title",
            "help",
            "required",
            "primary",
            "position",
            "options",
            "min_value",
            "max_value",
            "anchors",
            "per_response",
            "allow_ties",
            "min_length",
            "max_length",
        )
        labels = {"min_value": "Min", "max_value": "Max", "per_response": "Per response", "allow_ties": "Allow ties"}
        widgets = {"help": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The row as typed: the text formats, and blank lengths where the kind has none (or the defaults).
        instance = self.instance
        self.initial["options"] = options_text(instance.options or [])
        self.initial["anchors"] = anchors_text(instance.anchors or {})
        self.initial["min_length"] = instance.min_length or None
        self.initial["max_length"] = None if instance.max_length == TEXT_MAX_CHARS else instance.max_length

    def clean_options(self) -> list[Any]:
        return options_parse(self.cleaned_data.get("options") or "")

    def clean_anchors(self) -> dict[str, Any]:
        return anchors_parse(self.cleaned_data.get("anchors") or "")

    def validate_unique(self) -> None:
        # The whole form is checked (questions_parse) and replaced at once: the rows' constraints (one key each, one
        # primary) hold for the new set, not between a new row and the saved one it replaces.
        pass

    def validate_constraints(self) -> None:
        pass

    def spec(self) -> dict[str, Any]:
        """The row as ``questions_parse`` reads it: the common fields, and only the settings that are given."""
        data = self.cleaned_data
        raw = {name: data.get(name) for name in ("key", "kind", "title", "help", "required", "primary")}
        raw["help"] = raw["help"] or ""
        given = {
            "options": data.get("options") or None,
            "min": data.get("min_value"),
            "max": data.get("max_value"),
            "anchors": data.get("anchors") or None,
            "per_response": data.get("per_response") or None,
            "allow_ties": data.get("allow_ties") or None,
            "min_length": data.get("min_length"),
            "max_length": data.get("max_length"),
        }
        return raw | {name: value for name, value in given.items() if value is not None}


# --- The whole form -----------------------------------------------------------------------------------------
@dataclass
class FormLink:
    """Lets the project's label rows see whether questions were given in the same submission (one per request)."""

    questions: QuestionInlineFormSet | None = None


class QuestionInlineFormSet(forms.BaseInlineFormSet):
    #: Set per request by ``ProjectAdmin.get_formsets_with_inlines`` and ``QuestionInline.get_formset``.
    link: FormLink | None = None
    editable: bool = True
    #: After a valid submission: the form to store (``questions_parse`` input), or ``None`` for "leave it".
    questions: list[dict[str, Any]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.link is not None:
            self.link.questions = self

    def validate_unique(self) -> None:
        pass  # questions_parse names a key given twice, in its own words

    def kept_forms(self) -> list[QuestionForm]:
        """The rows of the submitted form in their order (position, then place on the page)."""
        kept = [
            form
            for form in self.forms
            if form.has_changed() or form.instance.pk is not None
            if not self._should_delete_form(form)
        ]
        return sorted(kept, key=lambda form: (form.cleaned_data.get("position") or 0, self.forms.index(form)))

    def given(self) -> bool:
        """Whether this submission gives questions (checked or not)."""
        return self.editable and any(form.has_changed() and not self._should_delete_form(form) for form in self.forms)

    def clean(self) -> None:
        self.questions = None
        if not self.editable:
            return
        project = self.instance
        adding = project.pk is None
        row_errors = [
            f"Question {index} ({form.data.get(form.add_prefix('key')) or 'no key'!r}), {name}: {message}"
            for index, form in enumerate(self.forms, 1)
            if not self._should_delete_form(form)
            for name, messages in form.errors.items()
            for message in messages
        ]
        if row_errors:
            raise ValidationError(row_errors)
        kept = self.kept_forms()
        if adding and not kept:
            if project.kind in (ProjectKind.RANKING, ProjectKind.RATING):
                raise ValidationError(f"A {project.kind} project needs its questions (one of them primary): add them.")
            if not project.kind:
                raise ValidationError("Kind: choose one, or add questions (the primary question's kind decides it).")
            return
        if not adding and not self.has_changed():
            return
        specs, errors = questions_parse([form.spec() for form in kept], kind=project.kind or None)
        if errors:
            raise ValidationError([self._message(place, message, kept, adding) for place, message in errors.items()])
        kind = PROJECT_KIND_OF_PRIMARY[primary_of(specs).kind]
        if not adding:
            if project_has_judgments(project):
                raise ValidationError("The form cannot change: the project has judgments.")
            labels = {value for value, _, _ in primary_labels(primary_of(specs))}
            if (
                labels != project_label_values(project=project)
                and Task.objects.for_org(project.organization_id).filter(project=project).exists()
            ):
                raise ValidationError(
                    "The primary question's answers (the project's labels) cannot change once the project has tasks."
                )
        # The project takes its kind from the primary question before the admin saves it (this is its instance).
        project.kind = kind
        self.questions = [form.spec() for form in kept]

    def _message(self, place: str, message: str, kept: list[QuestionForm], adding: bool) -> str:
        if place == "kind":
            if adding:
                return f"Kind: {message} (or leave the kind blank)."
            return f"The primary question must keep the project's kind ({self.instance.kind}): {message}."
        match = _PLACE_RE.match(place)
        if match is None:
            return f"{message[:1].upper()}{message[1:]}."
        form = kept[int(match.group(1))]
        name, rest = match.group(2), match.group(3)
        key = form.cleaned_data.get("key") or "no key"
        if name is not None:
            field = FORM_FIELD_OF.get(name, name)
            if field in form.fields:
                form.add_error(field, f"{rest.lstrip('.')}: {message}" if rest else message)
            return f"Question {self.forms.index(form) + 1} ({key!r}), {name}{rest}: {message}."
        return f"Question {self.forms.index(form) + 1} ({key!r}): {message}."


class QuestionInline(TenantRolesMixin, admin.StackedInline):
    """The project's questions (its form). Saved by ``ProjectAdmin.save_related`` through the service, as a whole."""

    model = Question
    form = QuestionForm
    formset = QuestionInlineFormSet
    exclude = ("organization",)
    extra = 0
    max_num = 20
    ordering = ("position", "id")
    fieldsets = (
        (None, {"fields": (("key", "kind", "position"), "title", "help", ("required", "primary"))}),
        (
            "Settings of the kind",
            {
                "fields": (
                    "options",
                    ("min_value", "max_value", "per_response"),
                    "anchors",
                    "allow_ties",
                    ("min_length", "max_length"),
                )
            },
        ),
    )

    def get_formset(self, request: HttpRequest, obj: Project | None = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"editable": self.has_change_permission(request, obj)})

    def _editable(self, project: Project | None) -> bool:
        return not project_has_judgments(project)

    def has_add_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:  # type: ignore[override]
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)
