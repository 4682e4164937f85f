"""Trace records name their batch: a new PredictionBatch holds what every request of one lineage prediction batch
shares. Step 1 of 3: the table, and a nullable link beside the old per-record columns (filled by 0005, which the
old columns then leave in 0006; three migrations, so PostgreSQL never alters a table with pending FK checks)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0003_prediction_records'),
        ('registry', '0011_scanner_rescan'),
    ]

    operations = [
        migrations.CreateModel(
            name='PredictionBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('live', 'Live'), ('shadow', 'Shadow')], default='live', max_length=8)),
                ('route_role', models.CharField(blank=True, default='', max_length=16)),
                ('generation', models.PositiveIntegerField(default=0)),
                ('deployment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='deployments.deployment')),
                ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='deployments.endpoint')),
                ('node', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='registry.lineagenode')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='registry.modelversion')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        # Endpoint and version become nullable so that 0006 can be reversed. The new link has a name of its own until
        # 0006 drops the old one (its lineage node, copied into the batch by 0005): renaming the old column aside
        # would leave its index name to collide with the new column's on PostgreSQL.
        migrations.AlterField(
            model_name='predictionrecord',
            name='endpoint',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='deployments.endpoint'),
        ),
        migrations.AlterField(
            model_name='predictionrecord',
            name='version',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='registry.modelversion'),
        ),
        migrations.AddField(
            model_name='predictionrecord',
            name='prediction_batch',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='records', to='deployments.predictionbatch'),
        ),
    ]
