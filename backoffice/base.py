"""Base classes that make every customer-facing admin class tenant-scoped.

A non-superuser sees and edits only the organization they act under (``request.membership``):
change lists, change/delete/history pages (another organization's id answers 404, like a missing one),
foreign-key and many-to-many choices, list filters, autocomplete and search all start from the scoped queryset,
and the organization is set on save, never chosen in the form. Permissions come from the membership role, not
from Django's permission tables, so a customer admin has nothing to grant. Superusers keep the full view.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest

from labeling.models import Membership, Organization, Role
from labeling.querysets import TenantQuerySet
from labeling.selectors import organization_users
from labeling.tenancy import request_membership


def _membership(request: HttpRequest) -> Membership | None:
    return request_membership(request)


def scoped_choices(request: HttpRequest, model: type[models.Model]) -> models.QuerySet | None:
    """The rows of ``model`` a non-superuser may pick in a form; ``None`` means no restriction (superuser).

    Fails closed: a related model this function does not know yields no choices at all.
    """
    if request.user.is_superuser:
        return None
    membership = _membership(request)
    if membership is None:
        return model._default_manager.none()
    organization_id = membership.organization_id
    queryset = model._default_manager.all()
    if isinstance(queryset, TenantQuerySet):
        return queryset.for_org(organization_id)
    if model is Organization:
        return queryset.filter(pk=organization_id)
    if model is organization_users(organization=organization_id).model:
        return organization_users(organization=organization_id)
    return queryset.none()


class FilterLookupsOnlyMixin:
    """A change list filters only through its list filters.

    Django's admin refuses a relation path outside ``list_filter`` (``?user__password__startswith=``) but applies
    any lookup on the model's own columns (``?hash__startswith=``, ``?payload__regex=``): an oracle on what the
    page never shows, and a way to run a lookup the database cannot (a 500). Here a query parameter must be one
    that a list filter of the page reads; anything else is refused like Django refuses a relation path (400).
    """

    #: The lookups Django's field list filters read (``FieldListFilter.expected_parameters``).
    FIELD_FILTER_LOOKUPS = ("exact", "isnull", "gte", "lt", "isempty")

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest) -> bool:
        return lookup in self.filter_parameters(request) and super().lookup_allowed(  # type: ignore[misc]
            lookup, value, request
        )

    def get_search_results(self, request: HttpRequest, queryset: models.QuerySet, search_term: str) -> Any:
        # The change list's search and the autocomplete: a NUL cannot be in any text PostgreSQL holds (and sending it
        # there is an error), so such a term matches nothing.
        if "\x00" in search_term:
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]

    def filter_parameters(self, request: HttpRequest) -> set[str]:
        parameters: set[str] = set()
        for entry in self.get_list_filter(request):  # type: ignore[attr-defined]
            if isinstance(entry, type):  # a SimpleListFilter
                parameters.add(entry.parameter_name)
                continue
            path = entry[0] if isinstance(entry, list | tuple) else entry
            parameters.update(f"{path}__{lookup}" for lookup in self.FIELD_FILTER_LOOKUPS)
            field = get_fields_from_path(self.model, path)[-1]  # type: ignore[attr-defined]
            if field.is_relation:
                parameters.add(f"{path}__{field.target_field.name}__exact")
        return parameters


class TenantRolesMixin:
    """Role-based permissions shared by model admins and inlines."""

    #: Roles that may view rows; roles that may add, change and delete them.
    view_roles: tuple[str, ...] = (Role.ADMIN, Role.MANAGER)
    edit_roles: tuple[str, ...] = (Role.ADMIN, Role.MANAGER)

    def _role_allows(self, request: HttpRequest, roles: tuple[str, ...], obj: models.Model | None) -> bool:
        if request.user.is_superuser:
            return True
        membership = _membership(request)
        if membership is None or membership.role not in roles:
            return False
        return obj is None or getattr(obj, "organization_id", None) == membership.organization_id

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._role_allows(request, self.view_roles, None)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._role_allows(request, self.view_roles + self.edit_roles, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._role_allows(request, self.edit_roles, None)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._role_allows(request, self.edit_roles, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._role_allows(request, self.edit_roles, obj)

    def formfield_for_foreignkey(self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any) -> Any:
        choices = scoped_choices(request, db_field.related_model)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs: Any) -> Any:
        choices = scoped_choices(request, db_field.related_model)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


class TenantFormMixin:
    """Checks the model's constraints on the fields the admin fixes outside the form, too.

    Django skips every constraint that involves a field missing from the form (the organization set on save, a
    read-only parent), so a duplicate project name in the organization would reach the database and fail there
    (a server error) instead of showing a form error.
    """

    fixed_fields: tuple[str, ...] = ()
    fixed_organization_id: int | None = None
    organization_from: str | None = None

    def validate_constraints(self) -> None:
        instance = self.instance  # type: ignore[attr-defined]
        if self.organization_from and getattr(instance, f"{self.organization_from}_id", None) is not None:
            instance.organization_id = getattr(instance, self.organization_from).organization_id
        elif self.fixed_organization_id is not None:
            instance.organization_id = self.fixed_organization_id
        fixed = {name for name in self.fixed_fields if getattr(instance, f"{name}_id", None) is not None}
        exclude = self._get_validation_exclusions() - fixed  # type: ignore[attr-defined]
        try:
            instance.validate_constraints(exclude=exclude)
        except ValidationError as error:
            self._update_errors(error)  # type: ignore[attr-defined]


class TenantAdmin(FilterLookupsOnlyMixin, TenantRolesMixin, admin.ModelAdmin):
    """Model admin for a model with an ``organization`` foreign key and a ``TenantQuerySet`` manager.

    ``organization_from``: the name of a foreign key whose organization the row inherits (a task takes its
    project's); without it a customer's rows get the customer's organization and a superuser picks one.
    """

    organization_from: str | None = None

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        membership = _membership(request)
        if membership is None:
            return queryset.none()
        return queryset.for_org(membership.organization_id)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Django redirects with "doesn't exist" by default; another tenant's object must look missing: 404.
            raise Http404("Not found.")
        return obj

    def get_form(
        self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        membership = None if request.user.is_superuser else _membership(request)
        relations = {f.name for f in self.model._meta.fields if f.many_to_one}
        readonly = set(self.get_readonly_fields(request, obj)) & relations
        attrs = {
            "fixed_fields": tuple(sorted(readonly | {"organization"})),
            "fixed_organization_id": membership.organization_id if membership else None,
            "organization_from": self.organization_from,
        }
        return type(form.__name__, (TenantFormMixin, form), attrs)

    def get_exclude(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if self.organization_from or not request.user.is_superuser:
            exclude.append("organization")
        return exclude

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = []
        for entry in super().get_list_filter(request):
            if entry == "organization" and not request.user.is_superuser:
                continue
            if isinstance(entry, str) and self._is_relation(entry):
                # Only related rows that occur in the (scoped) change list, never every row in the table.
                entry = (entry, admin.RelatedOnlyFieldListFilter)
            filters.append(entry)
        return filters

    def _is_relation(self, path: str) -> bool:
        model = self.model
        field = None
        for part in path.split("__"):
            field = model._meta.get_field(part)
            if not field.is_relation:
                return False
            model = field.related_model
        return field is not None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if self.organization_from:
            obj.organization_id = getattr(obj, self.organization_from).organization_id
        elif not request.user.is_superuser:
            membership = _membership(request)
            if membership is None:
                raise Http404("Not found.")
            if change and obj.organization_id != membership.organization_id:
                raise Http404("Not found.")
            obj.organization_id = membership.organization_id
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_obj in formset.save(commit=False):
            if hasattr(inline_obj, "organization_id"):
                inline_obj.organization_id = form.instance.organization_id
            inline_obj.save()
        for deleted in formset.deleted_objects:
            deleted.delete()
        formset.save_m2m()


class TenantInline(TenantRolesMixin, admin.TabularInline):
    """Inline rows inherit the parent's organization in ``TenantAdmin.save_formset``."""

    exclude = ("organization",)


class SuperuserOnlyMixin(FilterLookupsOnlyMixin):
    """For Django's own admins (users, groups): superusers only, whatever Django permissions say."""

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        # Refused before the lookup: Django's history view looks the row up first and redirects for a missing id
        # but answers 403 for an existing one, which told anyone with admin access which ids exist.
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().get_object(request, object_id, from_field)  # type: ignore[misc]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser
