"""A system check for MySQL/MariaDB databases: the schema needs utf8mb4 and a binary collation.

utf8mb4 keeps four-byte characters (emoji in descriptions and user names);
the binary collation keeps names that differ only by case or trailing
spaces apart (e.g. branch names). File paths do not depend on it: their
uniqueness lives in a hash column.
"""

from django.core import checks
from django.db import connections


@checks.register(checks.Tags.database)
def mysql_character_set(app_configs, databases=None, **kwargs):
    problems = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "mysql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@character_set_database, @@collation_database")
            charset, collation = cursor.fetchone()
        if (charset, collation) != ("utf8mb4", "utf8mb4_bin"):
            problems.append(
                checks.Warning(
                    f"database {connection.settings_dict['NAME']} uses {charset}/{collation}",
                    hint="create it with CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                    id="life.W001",
                )
            )
    return problems
