"""Two SQL expressions the dashboard needs whose spelling differs between PostgreSQL and SQLite.

- ``HourBucket(ts)``: the hour a timestamp falls in: on PostgreSQL an aware timestamp
  (``date_trunc``, twice as fast as formatting it), on SQLite the text ``"YYYY-MM-DD HH"`` in UTC.
  The charts group by hour in the database (at most 24 rows per day and series) and fold hours into
  the agency's local days and weeks in Python: time zones with whole-hour offsets (all of France's)
  fold exactly, and neither database needs to know the zone.
- ``DaysBetween(a, b)``: ``b - a`` in days, fractional.
"""
from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class HourBucket(FunctionElement):
    type = String()  # the text on SQLite; PostgreSQL's driver hands an aware datetime whatever this says
    inherit_cache = True
    name = "hour_bucket"


@compiles(HourBucket)
def _hour_bucket_sqlite(element, compiler, **kw):  # stored as "YYYY-MM-DD HH:MM:SS…" in UTC
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 13)"


@compiles(HourBucket, "postgresql")
def _hour_bucket_postgresql(element, compiler, **kw):
    return f"date_trunc('hour', {compiler.process(element.clauses, **kw)})"


class DaysBetween(FunctionElement):
    type = Float()
    inherit_cache = True
    name = "days_between"


@compiles(DaysBetween)
def _days_between_sqlite(element, compiler, **kw):
    start, end = list(element.clauses)
    return f"(julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}))"


@compiles(DaysBetween, "postgresql")
def _days_between_postgresql(element, compiler, **kw):
    start, end = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)})) / 86400.0)"
