from django.db import migrations, models


class Migration(migrations.Migration):
    """One dead letter per message: rows stored before have no fingerprint (NULLs never collide)."""

    dependencies = [
        ("worker", "0002_dead_letter_source"),
    ]

    operations = [
        migrations.AddField(
            model_name="deadletter",
            name="fingerprint",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
    ]
