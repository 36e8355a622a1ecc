"""numpy columns to and from PostgreSQL in one round trip: the quality job's bulk read and write on PostgreSQL.

A million judgments fetched as rows cost a Python tuple each (seconds); here every column travels as one array in
PostgreSQL's binary form instead. Reading, the query aggregates each column with ``array_send(array_agg(...))``
and :func:`from_array` views the bytes as a numpy array. Writing, a :class:`Column` is a numpy array that psycopg
sends as one binary array parameter, which SQL takes apart with ``unnest``. Columns hold no NULLs (send a
sentinel and ``NULLIF`` it in SQL). All of it runs on Django's connection, so inside the caller's transaction.
PostgreSQL caps one value at 1 GB: some 89 million 8-byte elements per column.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import psycopg
from django.db import connection
from numpy.typing import ArrayLike, DTypeLike, NDArray
from psycopg.adapt import Dumper
from psycopg.pq import Format

__all__ = ["Column", "execute", "fetch_row", "from_array"]

# PostgreSQL element type -> (its oid, its array type's oid, big-endian numpy dtype of one element).
_TYPES: dict[str, tuple[int, int, str]] = {
    "int4": (23, 1007, ">i4"),
    "int8": (20, 1016, ">i8"),
    "float8": (701, 1022, ">f8"),
    "bool": (16, 1000, "|b1"),
}
_HEADER = struct.Struct(">iii")  # dimensions, has-NULLs flag, element type oid
_DIMENSION = struct.Struct(">ii")  # length, lower bound


def from_array(data: bytes | None, dtype: DTypeLike) -> NDArray[Any]:
    """A one-dimensional array without NULLs in binary form (``array_send``; ``None`` for an aggregate over no
    rows) as a native numpy array of ``dtype``, whose size must be the element's (e.g. int64 for ``int8``)."""
    if data is None:
        return np.empty(0, dtype=dtype)
    dimensions, has_nulls, _ = _HEADER.unpack_from(data)
    if dimensions == 0:
        return np.empty(0, dtype=dtype)
    length, _ = _DIMENSION.unpack_from(data, _HEADER.size)
    element = np.dtype(dtype).newbyteorder(">")
    offset = _HEADER.size + _DIMENSION.size
    if dimensions != 1 or has_nulls or len(data) != offset + length * (4 + element.itemsize):
        raise ValueError(f"Expected a 1-D array of {length} non-NULL {element.itemsize}-byte elements.")
    cells = np.frombuffer(data, dtype=[("size", ">i4"), ("value", element)], offset=offset, count=length)
    return cells["value"].astype(dtype)


class Column:
    """A numpy column sent as one PostgreSQL array parameter of ``pg_type`` (``int4``, ``int8``, ``float8`` or
    ``bool``) in binary form. Write ``%s::int8[]`` (etc.) in the SQL."""

    __slots__ = ("data", "pg_type")

    def __init__(self, values: ArrayLike, pg_type: str) -> None:
        element_oid, _, element = _TYPES[pg_type]
        array = np.asarray(values).ravel()
        if array.size == 0:
            self.data = _HEADER.pack(0, 0, element_oid)
        else:
            cells = np.empty(array.size, dtype=[("size", ">i4"), ("value", element)])
            cells["size"] = np.dtype(element).itemsize
            cells["value"] = array
            self.data = _HEADER.pack(1, 0, element_oid) + _DIMENSION.pack(array.size, 1) + cells.tobytes()
        self.pg_type = pg_type


class _ColumnDumper(Dumper):
    format = Format.BINARY

    def get_key(self, obj: Column, format: Any) -> tuple[type, str]:
        return (Column, obj.pg_type)

    def upgrade(self, obj: Column, format: Any) -> Dumper:
        dumper = _ColumnDumper(Column)
        dumper.oid = _TYPES[obj.pg_type][1]
        return dumper

    def dump(self, obj: Column) -> bytes:
        return obj.data


def _cursor() -> psycopg.Cursor[Any]:
    """A server-side-binding cursor on Django's connection (Django's own binds on the client: no binary)."""
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    cursor.adapters.register_dumper(Column, _ColumnDumper)
    return cursor


def fetch_row(sql: str, params: list[Any]) -> tuple[Any, ...]:
    """The one row of ``sql``, with binary results (``bytea`` as ``bytes``, arrays as lists)."""
    with connection.wrap_database_errors, _cursor() as cursor:
        cursor.execute(sql, params, binary=True)
        row = cursor.fetchone()
    assert row is not None
    return row


def execute(sql: str, params: list[Any]) -> int:
    """Run ``sql`` (which may take :class:`Column` parameters); the number of rows it affected."""
    with connection.wrap_database_errors, _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
