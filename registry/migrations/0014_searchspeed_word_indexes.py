"""Trigram indexes for plain-word search on PostgreSQL (registry.models.core.words_index); nothing on SQLite.

The indexes are in every database's model state, so later migrations see one schema, but only PostgreSQL gets them:
SQLite has no GIN indexes, and its LIKE reads every row whatever the index.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from registry.models.core import words_index

INDEXES = [
    ("registeredmodel", words_index("name", "model_name_words")),
    ("registeredmodel", words_index("description", "model_description_words")),
    ("modeltag", words_index("value", "model_tag_value_words")),
    ("modelversion", words_index("description", "version_description_words")),
    ("versiontag", words_index("value", "version_tag_value_words")),
]


def create_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for model_name, index in INDEXES:
            schema_editor.add_index(apps.get_model("registry", model_name), index)


def drop_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for model_name, index in INDEXES:
            schema_editor.remove_index(apps.get_model("registry", model_name), index)


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0013_blob_collection"),
    ]

    operations = [
        TrigramExtension(),  # a no-op on other databases
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name=model_name, index=index)
                              for model_name, index in INDEXES],
            database_operations=[migrations.RunPython(create_on_postgresql, drop_on_postgresql)],
        ),
    ]
