"""The maintained search column of model versions (registry.search.text): added, filled from each version's model
name, description and tag values (upper-cased by the database), then trigram-indexed on PostgreSQL in place of the description's own index (word
search no longer reads the description apart). Indexes are in every database's model state, as in 0014, but only
PostgreSQL gets them.

On SQLite the column is added as a nullable one: a NOT NULL column with a default makes SQLite's schema editor rebuild
the table from the model state, which holds 0014's PostgreSQL-only indexes, and SQLite cannot create them. Django
never writes NULL into it (the field's default is ""), and the fill below gives every existing row its text; a later
rebuild of the table takes the NOT NULL of the state.
"""

from django.db import migrations, models

from registry.models.core import search_index, words_index
from registry.search.text import version_search_fill

SEARCH_INDEX = search_index("search_text", "version_search_words")
DESCRIPTION_INDEX = words_index("description", "version_description_words")


def _column(vendor: str) -> models.TextField:
    field = (models.TextField(blank=True, default="", editable=False) if vendor == "postgresql"
             else models.TextField(null=True, editable=False))
    field.set_attributes_from_name("search_text")
    return field


def add_column(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.add_field(apps.get_model("registry", "ModelVersion"), _column(vendor))


def drop_column(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.remove_field(apps.get_model("registry", "ModelVersion"), _column(vendor))


def fill(apps, schema_editor):
    versions = apps.get_model("registry", "ModelVersion").objects.using(schema_editor.connection.alias)
    version_search_fill(versions.all(), tag_model=apps.get_model("registry", "VersionTag"))


def index_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        model = apps.get_model("registry", "ModelVersion")
        schema_editor.remove_index(model, DESCRIPTION_INDEX)
        schema_editor.add_index(model, SEARCH_INDEX)


def unindex_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        model = apps.get_model("registry", "ModelVersion")
        schema_editor.remove_index(model, SEARCH_INDEX)
        schema_editor.add_index(model, DESCRIPTION_INDEX)


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0014_searchspeed_word_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddField(
                model_name="modelversion",
                name="search_text",
                field=models.TextField(blank=True, default="", editable=False),
            )],
            database_operations=[migrations.RunPython(add_column, drop_column)],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="modelversion", name="version_description_words"),
                migrations.AddIndex(model_name="modelversion", index=SEARCH_INDEX),
            ],
            database_operations=[migrations.RunPython(index_on_postgresql, unindex_on_postgresql)],
        ),
    ]
