"""The floor: the same walk and upsert as `aai-etl sync`, with nothing but requests and the DB driver.

Reads the same environment as aai-etl (ASSEMBLYAI_API_KEY, ASSEMBLYAI_BASE_URL, AAI_ETL_DATABASE_URL).
Like aai-etl it commits once per page and keeps the same two secondary indexes, so the difference to
aai-etl is the cost of its machinery (SQLAlchemy, Alembic, item parsing, cursor and run bookkeeping),
not of doing less work.
"""

from __future__ import annotations

import json
import os
import sqlite3

import requests

FIELDS = ("id", "status", "created", "completed", "audio_url", "resource_url", "error")
COLUMNS = ", ".join(FIELDS) + ", raw"
UPDATES = ", ".join(f"{name} = excluded.{name}" for name in (*FIELDS[1:], "raw"))

DDL = {
    "sqlite": """
        CREATE TABLE IF NOT EXISTS transcripts (
            id TEXT PRIMARY KEY, status TEXT, created TEXT, completed TEXT,
            audio_url TEXT, resource_url TEXT, error TEXT, raw TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS ix_status_created ON transcripts (status, created);
        CREATE INDEX IF NOT EXISTS ix_created ON transcripts (created);
    """,
    "postgresql": """
        SET TIME ZONE 'UTC';
        CREATE TABLE IF NOT EXISTS transcripts (
            id TEXT PRIMARY KEY, status TEXT, created TIMESTAMPTZ, completed TIMESTAMPTZ,
            audio_url TEXT, resource_url TEXT, error TEXT, raw JSONB NOT NULL);
        CREATE INDEX IF NOT EXISTS ix_status_created ON transcripts (status, created);
        CREATE INDEX IF NOT EXISTS ix_created ON transcripts (created);
    """,
}


def connect(url: str):
    """(connection, parameter placeholder) for a sqlite:///PATH or postgresql[+psycopg]://... URL."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        # The same settings aai-etl uses, so both pay the same fsync cost.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(DDL["sqlite"])
        return conn, "?"
    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
    conn.execute(DDL["postgresql"])
    conn.commit()
    return conn, "%s"


def main() -> None:
    conn, mark = connect(os.environ["AAI_ETL_DATABASE_URL"])
    upsert = (
        f"INSERT INTO transcripts ({COLUMNS}) VALUES ({', '.join([mark] * (len(FIELDS) + 1))}) "
        f"ON CONFLICT (id) DO UPDATE SET {UPDATES}"
    )
    session = requests.Session()
    session.headers["Authorization"] = os.environ["ASSEMBLYAI_API_KEY"]
    url = os.environ["ASSEMBLYAI_BASE_URL"].rstrip("/") + "/v2/transcript"
    params = {"limit": 200}
    while True:
        response = session.get(url, params=params, timeout=60)
        response.raise_for_status()
        body = response.json()
        items = body["transcripts"]
        rows = [tuple(item.get(name) for name in FIELDS) + (json.dumps(item),) for item in items]
        cursor = conn.cursor()
        cursor.executemany(upsert, rows)
        conn.commit()
        if not items or body["page_details"].get("prev_url") is None:
            break
        params["before_id"] = items[-1]["id"]
    conn.close()


if __name__ == "__main__":
    main()
