# Lineage graph: typed nodes and edges (written by hand; see registry/lineage_models.py).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0002_mlflow_tracking'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='LineageNode',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('dataset', 'Dataset version'), ('feature_set', 'Feature set version'), ('code_commit', 'Code commit'), ('model_version', 'Model version'), ('converted_artifact', 'Converted artifact'), ('deployment', 'Deployment'), ('prediction_batch', 'Prediction batch')], max_length=24)),
                ('key', models.CharField(max_length=64)),
                ('name', models.CharField(max_length=500)),
                ('version', models.CharField(blank=True, default='', max_length=128)),
                ('uri', models.CharField(blank=True, default='', max_length=2048)),
                ('digest', models.CharField(blank=True, default='', max_length=128)),
                ('row_count', models.BigIntegerField(blank=True, null=True)),
                ('schema', models.JSONField(blank=True, default=dict)),
                ('contains_personal_data', models.BooleanField(default=False)),
                ('repository', models.CharField(blank=True, default='', max_length=2048)),
                ('commit', models.CharField(blank=True, default='', max_length=64)),
                ('transformation_ref', models.CharField(blank=True, default='', max_length=2048)),
                ('external_id', models.CharField(blank=True, default='', max_length=256)),
                ('endpoint', models.CharField(blank=True, default='', max_length=256)),
                ('window_start', models.DateTimeField(blank=True, null=True)),
                ('window_end', models.DateTimeField(blank=True, null=True)),
                ('properties', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('model', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='lineage_nodes', to='registry.registeredmodel')),
                ('model_version', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='lineage_node', to='registry.modelversion')),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['kind', 'name', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='LineageEdge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('derived_from', 'derived from'), ('trained_on', 'trained on'), ('uses_features', 'uses features'), ('built_from_code', 'built from code'), ('converted_from', 'converted from'), ('fine_tuned_from', 'fine-tuned from'), ('deployed_as', 'deployed as'), ('produced', 'produced by')], max_length=24)),
                ('role', models.CharField(blank=True, default='', max_length=16)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('downstream', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='upstream_edges', to='registry.lineagenode')),
                ('upstream', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='downstream_edges', to='registry.lineagenode')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.AddIndex(
            model_name='lineagenode',
            index=models.Index(fields=['kind', 'name'], name='lineage_node_kind_name'),
        ),
        migrations.AddConstraint(
            model_name='lineagenode',
            constraint=models.UniqueConstraint(fields=('kind', 'key'), name='uniq_lineage_node_key'),
        ),
        migrations.AddConstraint(
            model_name='lineagenode',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'model_version'), ('model__isnull', False), ('model_version__isnull', False)), models.Q(models.Q(('kind', 'model_version'), _negated=True), ('model_version__isnull', True)), _connector='OR'), name='lineage_node_version_iff_kind'),
        ),
        migrations.AddIndex(
            model_name='lineageedge',
            index=models.Index(fields=['downstream', 'upstream'], name='lineage_edge_down_up'),
        ),
        migrations.AddConstraint(
            model_name='lineageedge',
            constraint=models.UniqueConstraint(fields=('upstream', 'downstream', 'kind', 'role'), name='uniq_lineage_edge'),
        ),
        migrations.AddConstraint(
            model_name='lineageedge',
            constraint=models.CheckConstraint(condition=models.Q(('upstream', models.F('downstream')), _negated=True), name='lineage_edge_no_self_loop'),
        ),
    ]
