"""The model list's filters: one django-filter FilterSet behind the models page and `GET /api/v1/models`."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from registry.models import RegisteredModel, Stage
from registry.search.compiler import compile_model_filter
from registry.search.words import model_words_q, split_words

ORDER_CHOICES = [("name", "Name"), ("-updated", "Recently updated"), ("-created", "Newest")]
ORDERING = {"name": "name", "-created": "-created_at", "-updated": "-updated_at"}


class ModelFilter(django_filters.FilterSet):
    """Filter-language expression, plain words, a stage some version holds, a tag (`key` or `key=value`), an order."""

    filter = django_filters.CharFilter(
        method="by_expression", label="Filter",  # the language checks its own length and depth
        widget=forms.TextInput(attrs={
            "placeholder": "name LIKE 'churn%' AND tags.team = 'ml'", "type": "search",
            "aria-label": "Filter", "autocomplete": "off", "spellcheck": "false", "class": "mono",
        }),
    )
    q = django_filters.CharFilter(
        method="by_words", label="Search",  # split_words checks the length and the number of words
        widget=forms.TextInput(attrs={
            "placeholder": "wine quality   or   name LIKE 'churn%' AND tags.team = 'ml'", "type": "search",
            "aria-label": "Search", "autocomplete": "off", "spellcheck": "false",
        }),
    )
    stage = django_filters.ChoiceFilter(
        method="by_stage", choices=Stage.choices, empty_label="Any stage", label="Stage",
        widget=forms.Select(attrs={"aria-label": "Stage"}),
    )
    tag = django_filters.CharFilter(
        method="by_tag", max_length=5250, label="Tag",
        widget=forms.TextInput(attrs={"placeholder": "key=value", "aria-label": "Tag", "class": "mono"}),
    )
    order = django_filters.ChoiceFilter(
        method="by_order", choices=ORDER_CHOICES, empty_label=None, label="Order",
        widget=forms.Select(attrs={"aria-label": "Order"}),
    )

    class Meta:
        model = RegisteredModel
        fields: list[str] = []

    def by_expression(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Models matching a filter-language expression (errors are the language's InvalidInput)."""
        return queryset.filter(compile_model_filter(value))

    def by_words(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Models whose name, description or a tag value holds every word, case-insensitively."""
        return queryset.filter(model_words_q(split_words(value)))

    def by_stage(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Models with at least one version in the stage."""
        return queryset.filter(versions__stage=value).distinct()

    def by_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Models carrying the tag `key`, or `key=value` exactly."""
        key, _, tag_value = value.partition("=")
        return queryset.filter(tags__key=key, **({"tags__value": tag_value} if tag_value else {}))

    def by_order(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Order by the chosen column, then by id so pages never overlap."""
        return queryset.order_by(ORDERING[value], "pk")

    def error_message(self) -> str:
        """Every field error in one sentence, as the page and the API report it."""
        errors: Any = self.errors
        return " ".join(f"{field}: {message}" for field, messages in errors.items() for message in messages)
