"""On PostgreSQL, refuse UPDATE and DELETE of audit events and checkpoints at the database itself.

TRUNCATE is left to privileges (revoke it from the application's role in production): Django's test flush
truncates every table, so a TRUNCATE trigger would break transactional tests.
"""

from django.db import migrations

TABLES = ("governance_auditevent", "governance_auditcheckpoint")

FUNCTION = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def _install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only()"
        )


def _remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS governance_audit_append_only()")


class Migration(migrations.Migration):

    dependencies = [("governance", "0001_initial")]

    operations = [migrations.RunPython(_install, _remove)]
