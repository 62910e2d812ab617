"""Runs computed by the worker next to Taskcluster ones (whose fields become optional); per-file detail; what was checked."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('l10n', '0001_initial'),
        ('life', '0006_computed_trees'),
    ]

    operations = [
        migrations.CreateModel(
            name='RunFile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('path', models.TextField(help_text='the reference path (without the locale folder)')),
                ('missing', models.JSONField(default=list, help_text='message ids the locale lacks, in reference order')),
                ('missing_file', models.BooleanField(default=False, help_text='the whole file is missing')),
                ('error', models.TextField(blank=True, default='', help_text="why the locale's file does not parse")),
            ],
        ),
        migrations.AddField(
            model_name='active',
            name='checked',
            field=models.DateTimeField(blank=True, help_text='when it was last checked', null=True),
        ),
        migrations.AddField(
            model_name='active',
            name='checked_locale',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='life.changeset'),
        ),
        migrations.AddField(
            model_name='active',
            name='checked_reference',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='life.changeset'),
        ),
        migrations.AddField(
            model_name='run',
            name='computed_by',
            field=models.CharField(blank=True, default='', help_text='library and version', max_length=100),
        ),
        migrations.AddField(
            model_name='run',
            name='locale_revision',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='life.changeset'),
        ),
        migrations.AddField(
            model_name='run',
            name='origin',
            field=models.CharField(choices=[('taskcluster', 'published by a Taskcluster task'), ('computed', 'computed by this worker')], default='taskcluster', max_length=12),
        ),
        migrations.AddField(
            model_name='run',
            name='reference_revision',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='life.changeset'),
        ),
        migrations.AlterField(
            model_name='run',
            name='artifact',
            field=models.CharField(blank=True, default='', help_text='the detail artifact', max_length=255),
        ),
        migrations.AlterField(
            model_name='run',
            name='root_url',
            field=models.URLField(blank=True, default='', help_text='the Taskcluster deployment', max_length=255),
        ),
        migrations.AlterField(
            model_name='run',
            name='run_id',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='run',
            name='srctime',
            field=models.DateTimeField(db_index=True, help_text='when the compared sources were taken (task creation, or the newer compared commit)'),
        ),
        migrations.AlterField(
            model_name='run',
            name='task_id',
            field=models.CharField(blank=True, max_length=22, null=True),
        ),
        migrations.AddConstraint(
            model_name='run',
            constraint=models.UniqueConstraint(fields=('tree', 'locale', 'reference_revision', 'locale_revision'), name='unique_computed_run'),
        ),
        migrations.AddField(
            model_name='runfile',
            name='run',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='files', to='l10n.run'),
        ),
    ]
