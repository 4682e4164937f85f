"""Step 3 of 3: a trace record keeps only its request id, batch and time; the rest is read through the batch."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0005_prediction_batch_fill'),
    ]

    operations = [
        migrations.RemoveField(model_name='predictionrecord', name='batch'),
        migrations.RemoveField(model_name='predictionrecord', name='endpoint'),
        migrations.RemoveField(model_name='predictionrecord', name='deployment'),
        migrations.RemoveField(model_name='predictionrecord', name='version'),
        migrations.RemoveField(model_name='predictionrecord', name='role'),
        migrations.RemoveField(model_name='predictionrecord', name='route_role'),
        migrations.RemoveField(model_name='predictionrecord', name='generation'),
        migrations.RenameField(model_name='predictionrecord', old_name='prediction_batch', new_name='batch'),
        migrations.AlterField(
            model_name='predictionrecord',
            name='batch',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='records', to='deployments.predictionbatch'),
        ),
    ]
