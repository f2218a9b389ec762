"""The same walk done by dlt's rest_api source, for comparison. Run with benchmarks/.venv-dlt/bin/python.

Reads ASSEMBLYAI_API_KEY, ASSEMBLYAI_BASE_URL and AAI_ETL_DATABASE_URL like aai-etl, plus DLT_PIPELINES_DIR
(a fresh temp dir per run, so no state from an earlier run is reused). SQLite goes through dlt's `sqlalchemy`
destination, PostgreSQL through dlt's native `postgres` destination (psycopg2).
"""

from __future__ import annotations

import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # before dlt reads its config

import dlt
from dlt.sources.rest_api import rest_api_source


def destination(url: str):
    if url.startswith("sqlite:///"):
        return dlt.destinations.sqlalchemy(credentials=url)
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    if "@" in url and ":" not in url.split("://", 1)[1].split("@", 1)[0]:
        # dlt's postgres credentials insist on a password; a trust-auth server ignores this one.
        url = url.replace("@", ":unused@", 1)
    return dlt.destinations.postgres(credentials=url)


def main() -> None:
    source = rest_api_source({
        "client": {
            "base_url": os.environ["ASSEMBLYAI_BASE_URL"].rstrip("/") + "/",
            "auth": {"type": "api_key", "name": "Authorization", "api_key": os.environ["ASSEMBLYAI_API_KEY"]},
            # Newest to oldest: prev_url is the older page and is null on the last one.
            "paginator": {"type": "json_link", "next_url_path": "page_details.prev_url"},
        },
        "resources": [{
            "name": "transcripts",
            "primary_key": "id",
            "write_disposition": "merge",
            # A column that is null on every item of a load is not created otherwise (`error` usually is).
            "columns": {"error": {"data_type": "text"}, "completed": {"data_type": "timestamp"}},
            "endpoint": {"path": "v2/transcript", "params": {"limit": 200}, "data_selector": "transcripts"},
        }],
    })
    pipeline = dlt.pipeline(
        "aai_bench",
        destination=destination(os.environ["AAI_ETL_DATABASE_URL"]),
        dataset_name="aai",
        pipelines_dir=os.environ["DLT_PIPELINES_DIR"],
    )
    pipeline.run(source)


if __name__ == "__main__":
    main()
