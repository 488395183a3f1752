"""Bulk inserts for the hot paths (judgments, quarantine, consensus rows, lineage links).

On PostgreSQL a page goes through ``COPY`` into a temporary table (psycopg's C dumpers), then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``. Profiled on 25k judgments: SQLAlchemy's
multi-VALUES batching spent 5.7 s of 10.5 s in psycopg re-parsing statements with one placeholder
per value, and an ``unnest`` of per-column arrays still spent 2.2 s quoting array elements; COPY
does neither. On SQLite, SQLAlchemy's executemany batching is already fast and is used as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Table
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

__all__ = ["bulk_insert"]


def _is_json(table: Table, name: str) -> bool:
    column_type = table.c[name].type
    return isinstance(column_type, JSON) or isinstance(getattr(column_type, "impl", None), JSON)


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]], *,
                on_conflict: Sequence[str] | None = None, returning: str | None = None) -> int:
    """Insert ``rows`` (dicts with the same keys) in one statement per page.

    ``on_conflict``: the unique columns whose conflicts are skipped (``[]``: any conflict), or
    None to let a conflict raise. Returns how many rows were inserted when ``returning`` names a
    column (so skipped duplicates are not counted), else ``len(rows)``.
    """
    if not rows:
        return 0
    columns = tuple(rows[0])
    conflict = tuple(on_conflict) if on_conflict is not None else None
    if session.get_bind().dialect.name == "postgresql":
        return _pg_copy_insert(session, table, rows, columns, conflict, returning)
    statement = sqlite_insert(table)
    if conflict is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict) or None)
    if returning:
        return len(session.execute(statement.returning(table.c[returning]), list(rows)).all())
    session.execute(statement, list(rows))
    return len(rows)



def _pg_copy_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]], columns: tuple[str, ...],
                    conflict: tuple[str, ...] | None, returning: str | None) -> int:
    staging = f"_bulk_{table.name}"
    names = ", ".join(f'"{c}"' for c in columns)
    json_columns = {i for i, name in enumerate(columns) if _is_json(table, name)}
    cursor = session.connection().connection.driver_connection.cursor()  # same transaction as the session
    try:
        cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" (LIKE "{table.name}" INCLUDING DEFAULTS) '
                       "ON COMMIT DELETE ROWS")
        cursor.execute(f'TRUNCATE "{staging}"')
        with cursor.copy(f'COPY "{staging}" ({names}) FROM STDIN') as copy:
            for row in rows:
                values = [row[c] for c in columns]
                for i in json_columns:
                    if values[i] is not None:
                        values[i] = Jsonb(values[i])
                copy.write_row(values)
        sql = f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{staging}"'
        if conflict is not None:
            sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else " ON CONFLICT DO NOTHING"
        if returning:
            sql += f' RETURNING "{returning}"'
        cursor.execute(sql)
        inserted = len(cursor.fetchall()) if returning else len(rows)
        cursor.execute(f'TRUNCATE "{staging}"')
        return inserted
    finally:
        cursor.close()
