"""The maintained search column of model versions: what plain-word search reads, composed in one place.

`ModelVersion.search_text` holds the model's name, the version's description and its tag values (not the keys),
separated by a newline, upper-cased by the database. A search word holds no whitespace (search.words splits on it), so
it appears in the column exactly when it appears in one of those parts; and the database's UPPER is the fold that
`icontains` applied to each part on every search, so comparing the column with the upper-cased word keeps the former
"model name, description or a tag value, case-insensitively" test, folded once per write instead of once per row
per search, while PostgreSQL answers every word from one trigram index.

The registry services keep it current (version create and edit, version tag set and delete, model rename) by calling
the functions here; the data migration that added the column fills it with `version_search_fill`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet, Value
from django.db.models.functions import Upper

SEPARATOR = "\n"
FILL_BATCH = 1000


def version_search_text(*, model_name: str, description: str, tag_values: Iterable[str]) -> str:
    """Compose a version's search text from what word search matches: model name, description, tag values."""
    return SEPARATOR.join([model_name, description, *tag_values])


def folded(text: str) -> Upper:
    """`text` as the column stores it: upper-cased by the database, as `icontains` folds (to assign, not to read)."""
    return Upper(Value(text))


def version_search_text_current(version: Any) -> str:
    """The search text of `version` (its model loaded) as its description, perhaps changed and unsaved, and its
    stored tags make it."""
    return version_search_text(model_name=version.model.name, description=version.description,
                               tag_values=version.tags.order_by("key").values_list("value", flat=True))


def version_search_refresh(version: Any) -> None:
    """Recompute and save the search text of `version` (its model loaded, as the services hand it over), after its
    tags changed."""
    version.search_text = folded(version_search_text_current(version))
    version.save(update_fields=["search_text"])


def version_search_fill(versions: QuerySet, *, tag_model: type | None = None, batch: int = FILL_BATCH) -> int:
    """Recompute the search text of every version in `versions`, `batch` at a time; return how many were written.

    For a renamed model's versions, and for filling the column in bulk: a migration passes its historical models
    (the queryset's and `tag_model`, the version tag model); the running code leaves `tag_model` out."""
    if tag_model is None:
        from registry.models import VersionTag

        tag_model = VersionTag
    version_model = versions.model
    ids = list(versions.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        values: dict[int, list[str]] = {}
        for version_id, value in (tag_model.objects.filter(version_id__in=chunk).order_by("version_id", "key")
                                  .values_list("version_id", "value")):
            values.setdefault(version_id, []).append(value)
        rows = version_model.objects.filter(pk__in=chunk).values_list("pk", "model__name", "description")
        version_model.objects.bulk_update(
            [version_model(pk=pk, search_text=folded(version_search_text(model_name=name, description=description,
                                                                         tag_values=values.get(pk, ()))))
             for pk, name, description in rows],
            ["search_text"], batch_size=batch)
    return len(ids)
