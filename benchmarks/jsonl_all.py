"""The JSON Lines export of the same rows the Parquet export writes: every table's rows in the window, as
`aai-etl export --format jsonl` writes the transcripts table (SQLAlchemy's typed rows, json.dumps a line),
for intelligence.py to compare with the Parquet export. It exists only here: aai-etl's JSON Lines export
covers the transcripts table alone.

    .venv/bin/python benchmarks/jsonl_all.py DATABASE_URL OUTPUT_DIR
"""

import sys
from pathlib import Path

from sqlalchemy import select

from etl.outputs.export import _writer
from etl.outputs.parquet import TABLES
from etl.store.engine import make_engine
from etl.store.schema import transcripts


def main(url: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with make_engine(url).connect() as conn:
        for name, table in TABLES.items():
            query = select(table) if table is transcripts else select(table, transcripts.c.change_seq).join(
                transcripts, (transcripts.c.id == table.c.transcript_id) & (transcripts.c.account == table.c.account))
            with open(directory / f"{name}.jsonl", "w", encoding="utf-8") as out:
                write = _writer("jsonl", out)
                for row in conn.execution_options(stream_results=True, yield_per=1000).execute(query).mappings():
                    write(dict(row))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
