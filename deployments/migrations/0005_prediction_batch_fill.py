"""Step 2 of 3: every existing trace record gets the batch its shared columns describe (one batch per distinct
lineage node, endpoint, deployment, version, traffic role, routing role and generation), so traces taken before
the change still answer within their retention window."""

from django.db import migrations

# A record's columns, as the batch names them ("batch" on the record is still the lineage node here).
SHARED = {"batch_id": "node_id", "endpoint_id": "endpoint_id", "deployment_id": "deployment_id",
          "version_id": "version_id", "role": "role", "route_role": "route_role", "generation": "generation"}


def records_to_batches(apps, schema_editor):
    record = apps.get_model("deployments", "PredictionRecord")
    batch = apps.get_model("deployments", "PredictionBatch")
    unlinked = record.objects.filter(prediction_batch__isnull=True)
    for shared in list(unlinked.values(*SHARED).distinct().order_by()):
        made = batch.objects.create(**{SHARED[name]: value for name, value in shared.items()})
        unlinked.filter(**shared).update(prediction_batch=made)


def batches_to_records(apps, schema_editor):
    record = apps.get_model("deployments", "PredictionRecord")
    batch = apps.get_model("deployments", "PredictionBatch")
    for shared in batch.objects.values("pk", *SHARED.values()):
        record.objects.filter(prediction_batch_id=shared["pk"]).update(
            **{name: shared[column] for name, column in SHARED.items()})


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0004_prediction_batch'),
    ]

    operations = [
        migrations.RunPython(records_to_batches, batches_to_records),
    ]
