"""Computed trees: their reference (config repository and path), where their locales live, archived."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('life', '0005_unbounded_upstream_text'),
    ]

    operations = [
        migrations.AddField(
            model_name='tree',
            name='archived',
            field=models.BooleanField(default=False, help_text='its reference is gone upstream; history kept'),
        ),
        migrations.AddField(
            model_name='tree',
            name='computed',
            field=models.BooleanField(default=False, help_text='comparisons computed by the worker from pushes'),
        ),
        migrations.AddField(
            model_name='tree',
            name='locales_repository',
            field=models.ForeignKey(blank=True, help_text='a repository with a folder per locale (else the l10n forest has a repository per locale)', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='locale_trees', to='life.repository'),
        ),
    ]
