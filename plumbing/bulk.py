"""Writing and reading rows in bulk, portably: the SQL toolkit of every app (no model of its own).

Inserts ignore rows whose unique key exists (so a parallel worker that got
there first is harmless), run thousands of rows per statement, and never
exceed what the database allows in one query. The number of queries depends
on the number of chunks, not on the number of rows.
"""

import itertools
import time

from django.db import connection, transaction
from django.db.models.constants import OnConflict

# Rows per INSERT and values per IN (...) where the database allows it.
CHUNK = 5000
# MariaDB/MySQL: a statement's rows, written as literals, stop short of this many characters (at most four
# bytes each): the server refuses a statement over its max_allowed_packet, 16 MB by default.
MYSQL_STATEMENT_CHARS = 2 << 20
# From this many rows on, PostgreSQL gets them through COPY (three statements whatever the count)
# rather than as arrays: psycopg's C copy writer beats dumping the arrays, and the server parses less.
COPY_FROM_ROWS = 1000


def chunk_size(params_per_row=1):
    limit = connection.features.max_query_params or 65535
    return max(1, min(CHUNK, limit // params_per_row - 1))


def chunked(items, size, first=None):
    """Lists of up to ``size`` items of ``items`` (any iterable, read as it goes).

    With ``first``, the lists start at that size and double up to ``size``: a consumer working while
    the next list is read (``plumbing.background.read_ahead``) starts sooner.
    """
    iterator = iter(items)
    step = min(first or size, size)
    while chunk := list(itertools.islice(iterator, step)):
        yield chunk
        step = min(2 * step, size)


def insert_rows(model, fields, rows, returning=None):
    """INSERT ``rows`` (tuples of database-ready values for ``fields``), ignoring rows whose unique key exists.

    Thousands of rows per statement, as ``bulk_create(ignore_conflicts=True)``
    does, without building a model instance per row: an import writes a
    hundred thousand rows, and the instances were most of its time. On
    PostgreSQL the rows travel as one array per column (``unnest``): two
    parameters to parse instead of ten thousand.

    With ``returning`` (field names), returns their values for the rows
    actually inserted, or None where the database cannot tell (the caller
    then looks them up).
    """
    if not rows:
        return []
    ops = connection.ops
    columns = [model._meta.get_field(name) for name in fields]
    head = (
        f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(model._meta.db_table)} "
        f"({', '.join(ops.quote_name(column.column) for column in columns)})"
    )
    tail = ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)
    returns = returning and connection.features.can_return_rows_from_bulk_insert
    if returns:
        tail += " RETURNING " + ", ".join(ops.quote_name(model._meta.get_field(name).column) for name in returning)
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        return _copy_rows(model, columns, rows, head, tail, returns)
    inserted = []
    with connection.cursor() as cursor:
        for sql, values in _insert_statements(head, tail, columns, rows):
            cursor.execute(sql, values)
            if returns:
                inserted += cursor.fetchall()
    return inserted if returns else None


def insert_new_rows(model, fields, rows, returning):
    """``insert_rows`` for rows that are expected to be new; ``returning``: [a unique key, "id"].

    On PostgreSQL, from COPY_FROM_ROWS rows on, they are copied straight into the table, in a
    savepoint: no conflict check per row and no temporary table, half the cost. A row whose unique
    key exists fails the copy and undoes it; then the rows go through ``insert_rows``, as they do
    at once when the first row's key exists (rows shared with others, as a fork's history is).
    """
    key, _ = returning
    if (connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS
            and not model.objects.filter(**{key: rows[0][fields.index(key)]}).exists()):
        copied = _copy_new_rows(model, fields, rows, key)
        if copied is not None:
            return copied
    return insert_rows(model, fields, rows, returning=returning)


def _copy_new_rows(model, fields, rows, key):
    ops, meta = connection.ops, model._meta
    table, pk = ops.quote_name(meta.db_table), ops.quote_name(meta.pk.column)
    columns = ", ".join(ops.quote_name(meta.get_field(name).column) for name in fields)
    with connection.cursor() as cursor:
        # Every row the copy adds gets a greater id than this one: that finds them without looking up a key.
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s))", [meta.db_table, meta.pk.column])
        floor = cursor.fetchone()[0]
        try:
            with transaction.atomic():
                _copy(cursor, f"COPY {table} ({columns}) FROM STDIN", rows)
        except connection.Database.IntegrityError:  # the driver's own: COPY runs on its cursor
            return None
        keys = {row[fields.index(key)] for row in rows}
        # Rows other transactions committed meanwhile may be there too; none has one of these keys.
        cursor.execute(f"SELECT {ops.quote_name(meta.get_field(key).column)}, {pk} FROM {table} WHERE {pk} > %s",
                       [floor])
        return [(value, row_id) for value, row_id in cursor.fetchall() if value in keys]


def append_rows(model, fields, rows):
    """Add ``rows`` (tuples of database-ready values for ``fields``) to a table that has no unique key
    they could collide with, the fastest way the database offers: ``COPY`` on PostgreSQL (no
    statement to parse, no value quoted in Python), multi-row INSERTs elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        insert_rows(model, fields, rows)
        return
    ops = connection.ops
    columns = ", ".join(ops.quote_name(model._meta.get_field(name).column) for name in fields)
    with connection.cursor() as cursor:
        _copy(cursor, f"COPY {ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN", rows)


def _ids_only(rows):
    """Whether every value of ``rows`` is an int (a link's ids): SQL and COPY text take them as written."""
    return bool(rows) and all(type(value) is int for row in rows for value in row)


def _insert_statements(head, tail, columns, rows):
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
        for chunk in chunked(rows, CHUNK):
            yield f"{head} SELECT * FROM unnest({arrays}) {tail}", [list(values) for values in zip(*chunk, strict=True)]
    elif _ids_only(rows):
        # Links between ids (most of an import's rows): written as literals, without quoting each
        # value through the driver, which costs more than the statement on MariaDB.
        row_format = "(" + ", ".join(["%d"] * len(columns)) + ")"
        for chunk in chunked(rows, CHUNK):
            yield f"{head} VALUES {', '.join([row_format % row for row in chunk])} {tail}", None
    elif connection.vendor == "mysql":
        yield from _mysql_statements(head, tail, rows)
    else:
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for chunk in chunked(rows, chunk_size(len(columns))):
            yield f"{head} VALUES {', '.join([row] * len(chunk))} {tail}", [value for row in chunk for value in row]


def _mysql_statements(head, tail, rows):
    """MariaDB/MySQL: the rows written as literals, up to CHUNK rows and MYSQL_STATEMENT_CHARS per statement.

    Strings go through the driver's own escaping (the connection's character set and SQL mode), ints
    and bytes as written, anything else through the driver's literal: the driver's quoting of each
    parameter cost twice this, and a changeset's row has five.
    """
    driver = connection.connection
    encoding, escape, literal = driver.encoding, driver.string_literal, driver.literal

    def sql(value):
        kind = type(value)
        if kind is str:
            return escape(value.encode(encoding)).decode(encoding)
        if kind is int:
            return str(value)
        if kind is bool:
            return "1" if value else "0"
        if value is None:
            return "NULL"
        if kind is bytes:
            return f"X'{value.hex()}'"  # the driver's literal of bytes need not be text in ``encoding``
        return literal(value).decode(encoding)

    values, size = [], 0
    for row in rows:
        text = "(" + ", ".join(map(sql, row)) + ")"
        if values and (len(values) == CHUNK or size + len(text) > MYSQL_STATEMENT_CHARS):
            yield f"{head} VALUES {', '.join(values)} {tail}", None
            values, size = [], 0
        values.append(text)
        size += len(text) + 2
    if values:
        yield f"{head} VALUES {', '.join(values)} {tail}", None


def _copy_rows(model, columns, rows, head, tail, returns):
    """PostgreSQL: COPY the rows into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING
    from it, in the rows' order (an identity column keeps it), so conflicts, sorted keys and RETURNING
    behave exactly as with the plain INSERT."""
    global _copies
    _copies += 1
    ops = connection.ops
    scratch = ops.quote_name(f"bulk_{model._meta.db_table}_{_copies}")
    names = ", ".join(ops.quote_name(column.column) for column in columns)
    types = ", ".join(f"{ops.quote_name(column.column)} {column.db_type(connection)}" for column in columns)
    # savepoint=False: a transaction of its own outside the caller's, none inside it (no extra query).
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {scratch} (bulk_order bigint GENERATED ALWAYS AS IDENTITY, {types}) "
                       "ON COMMIT DROP")
        _copy(cursor, f"COPY {scratch} ({names}) FROM STDIN", rows)
        cursor.execute(f"{head} SELECT {names} FROM {scratch} ORDER BY bulk_order {tail}")
        inserted = cursor.fetchall() if returns else None
        cursor.execute(f"DROP TABLE {scratch}")
    return inserted


def _copy(cursor, copy_sql, rows):
    """PostgreSQL's COPY of ``rows`` through psycopg (the driver's own cursor: Django's wrapper knows no
    COPY), counted with the queries it replaces."""
    started = time.monotonic()
    with cursor.cursor.copy(copy_sql) as copy:
        if _ids_only(rows):
            # Ids only (an import's links, most of its rows): COPY's text form needs no escaping for
            # them, and one string formatted here costs a fifth of handing the driver row by row.
            line = "\t".join(["%d"] * len(rows[0])) + "\n"
            copy.write("".join([line % row for row in rows]))
        else:
            for row in rows:
                copy.write_row(row)
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{copy_sql} -- {len(rows)} rows",
                                       "time": f"{time.monotonic() - started:.3f}"})


_copies = 0  # names each temporary table apart: one transaction may copy into the same table twice


def ids_by(model, field, values):
    """{value: id} of the rows whose unique ``field`` is one of ``values`` (few), creating the missing ones."""
    values = set(values)
    ids = dict(model.objects.filter(**{f"{field}__in": values}).values_list(field, "id"))
    missing = values - ids.keys()
    if missing:
        # Few rows of any model: instances fill in its other fields' defaults.
        rows = [model(**{field: value}) for value in sorted(missing)]
        model.objects.bulk_create(rows, ignore_conflicts=True, batch_size=chunk_size(len(model._meta.concrete_fields)))
        ids.update(model.objects.filter(**{f"{field}__in": missing}).values_list(field, "id"))
    return ids


def select_in(model, fields, field, values):
    """[(values of ``fields``)] of ``model``'s rows whose ``field`` is one of ``values``, as the driver
    returns them (no field conversion: a JSON column is a str on MariaDB and SQLite). Thousands of
    values cost Django more to resolve one by one than the database to look up: here PostgreSQL gets
    them as one array, the others as driver parameters, a chunk per query."""
    values = list(values)
    if not values:
        return []
    ops = connection.ops
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(model._meta.get_field(name).column) for name in fields)
    column = ops.quote_name(model._meta.get_field(field).column)
    rows = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT {columns} FROM {table} WHERE {column} = ANY(%s)", [values])
            return cursor.fetchall()
        for chunk in chunked(values, chunk_size()):
            cursor.execute(f"SELECT {columns} FROM {table} WHERE {column} IN ({', '.join(['%s'] * len(chunk))})", chunk)
            rows += cursor.fetchall()
    return rows


def delete_ids(model, ids):
    """Delete ``model``'s rows of primary keys ``ids`` (ints), thousands per statement, written as literals."""
    ops = connection.ops
    table, pk = ops.quote_name(model._meta.db_table), ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        for chunk in chunked(ids, CHUNK):
            cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(str(int(i)) for i in chunk)})")
