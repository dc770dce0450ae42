"""Benchmark of `flask import` against the raw bulk-load rate of the same database on the same files.

Run: ``.venv/bin/python bench/billing_import.py [--customers N] [--database-url URL]``.
It writes a synthetic export (one service point, meter, contract, a year of monthly readings
and invoices and their payments per customer) to a temporary directory, then in one run:
1. raw load: each CSV file copied as text into a staging table with the database's own bulk
   path (COPY on PostgreSQL, executemany on SQLite), no parsing and no checks;
2. import: `billing_import.import_directory` into the migrated schema (checks, references,
   upserts, status derivation), then a second import of the same files (nothing to change).
It prints rows per second of each and the ratio.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")

from bench.fresh import demo_app  # noqa: E402

COMMUNES = [("69123", "Lyon", "69003"), ("69266", "Villeurbanne", "69100"), ("13055", "Marseille", "13008"),
            ("06088", "Nice", "06000"), ("42218", "Saint-Étienne", "42000")]
FIRST = ["Hélène", "Jean-Baptiste", "Noé", "Zoé", "Éloïse", "François", "Anaïs", "Jérôme", "Maëlle", "Loïc"]
LAST = ["Lefèvre", "Dupont-Moreau", "Garnier", "Müller", "Rousseau", "Bénard", "Fournier", "Lambert", "Roche"]


def write_export(directory: Path, customers: int) -> int:
    """Write the CSV files; returns the number of data lines."""
    rng = random.Random(7)
    files = {
        "parties.csv": ["external_ref", "customer_number", "kind", "civility", "first_name", "last_name",
                        "company_name", "birth_date", "phones", "emails", "street", "address_extra",
                        "postal_code", "city", "insee_code", "vulnerable"],
        "service_points.csv": ["external_ref", "kind", "national_id", "street", "address_extra", "postal_code",
                               "city", "insee_code", "main_residence"],
        "meters.csv": ["serial", "kind", "service_point_ref", "installed_on", "removed_on"],
        "readings.csv": ["external_ref", "meter_serial", "service_point_ref", "read_on", "index", "kind"],
        "contracts.csv": ["external_ref", "number", "service_point_ref", "status", "start_date", "end_date", "offer"],
        "contract_parties.csv": ["contract_ref", "party_ref", "role"],
        "invoices.csv": ["external_ref", "number", "contract_ref", "issued_on", "due_on", "amount", "amount_paid",
                         "status"],
        "payments.csv": ["external_ref", "invoice_ref", "paid_on", "amount", "method"],
    }
    handles = {name: (directory / name).open("w", newline="", encoding="utf-8") for name in files}
    writers = {name: csv.writer(handles[name], delimiter=";") for name in files}
    for name, header in files.items():
        writers[name].writerow(header)
    lines = 0
    start = date(2024, 1, 5)
    for n in range(customers):
        insee, city, postal = COMMUNES[n % len(COMMUNES)]
        street = f"{rng.randint(1, 180)} rue {rng.choice(LAST)}"
        writers["parties.csv"].writerow([
            f"BP{n}", f"CL{n:08d}", "person", "Mme", rng.choice(FIRST), rng.choice(LAST), "", "1970-01-01",
            f"06 12 {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d}", f"c{n}@example.fr",
            street, "", postal, city, insee, "non"])
        writers["service_points.csv"].writerow([f"SP{n}", "electricity", f"{n:014d}", street, "", postal, city,
                                                insee, "oui"])
        writers["meters.csv"].writerow([f"M{n}", "electricity", f"SP{n}", "2019-01-01", ""])
        writers["contracts.csv"].writerow([f"CT{n}", f"EL-{n:09d}", f"SP{n}", "active", "2019-01-01", "", "Base"])
        writers["contract_parties.csv"].writerow([f"CT{n}", f"BP{n}", "holder"])
        lines += 6
        index = 1000
        for month in range(12):
            issued = start + timedelta(days=30 * month)
            index += rng.randint(150, 400)
            amount = f"{rng.randint(4000, 18000) / 100:.2f}"
            writers["readings.csv"].writerow([f"R{n}-{month}", f"M{n}", f"SP{n}", issued.isoformat(), index, "actual"])
            paid = month < 11
            writers["invoices.csv"].writerow([f"I{n}-{month}", f"F{n:08d}{month:02d}", f"CT{n}", issued.isoformat(),
                                              (issued + timedelta(days=15)).isoformat(), amount,
                                              amount if paid else "0", "paid" if paid else "open"])
            lines += 2
            if paid:
                writers["payments.csv"].writerow([f"P{n}-{month}", f"I{n}-{month}",
                                                  (issued + timedelta(days=12)).isoformat(), amount, "prelevement"])
                lines += 1
    for handle in handles.values():
        handle.close()
    return lines


def raw_load(engine, directory: Path) -> float:
    """Seconds to bulk-load every file as text into staging tables, the database's floor."""
    import sqlalchemy as sa

    started = time.perf_counter()
    with engine.begin() as connection:
        for path in sorted(directory.glob("*.csv")):
            with path.open(encoding="utf-8") as handle:
                header = handle.readline().strip().split(";")
                table = f"staging_{path.stem}"
                columns = ", ".join(f'"{c}" text' for c in header)
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
                connection.exec_driver_sql(f"CREATE TABLE {table} ({columns})")
                if engine.dialect.name == "postgresql":
                    raw = connection.connection.driver_connection
                    with raw.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, DELIMITER ';')") as copy:
                        while chunk := handle.read(1 << 20):
                            copy.write(chunk)
                else:
                    marks = ", ".join("?" for _ in header)
                    rows = csv.reader(handle, delimiter=";")
                    connection.connection.driver_connection.executemany(
                        f"INSERT INTO {table} VALUES ({marks})", rows)
        connection.execute(sa.text("SELECT 1"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    app, url, workdir = demo_app(args.database_url, prefix="guichet-bench-import-")

    from app.db import db, session
    from app.integration.billing_import import import_directory

    export = workdir / "export"
    export.mkdir()
    lines = write_export(export, args.customers)
    size = sum(p.stat().st_size for p in export.glob("*.csv"))
    print(f"export: {args.customers} customers, {lines} lines, {size / 1e6:.1f} MB")

    with app.app_context():
        raw_seconds = raw_load(db.get_engine(), export)
        started = time.perf_counter()
        report = import_directory(export)
        session.commit()
        import_seconds = time.perf_counter() - started
        assert report.ok, report.problems[:5]
        started = time.perf_counter()
        again = import_directory(export)
        session.commit()
        again_seconds = time.perf_counter() - started
        assert all(c["created"] == c["updated"] == 0 for c in again.counts.values())

    raw_rate, import_rate = lines / raw_seconds, lines / import_seconds
    print(f"database: {url.split(':')[0]}")
    print(f"raw bulk load        {raw_seconds:8.2f} s   {raw_rate:10,.0f} rows/s")
    print(f"flask import         {import_seconds:8.2f} s   {import_rate:10,.0f} rows/s")
    print(f"second import (noop) {again_seconds:8.2f} s   {lines / again_seconds:10,.0f} rows/s")
    print(f"ratio import / raw   {import_rate / raw_rate:8.3f}")


if __name__ == "__main__":
    main()
