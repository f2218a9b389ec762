"""Alembic environment: run from code with a connection handed over in config.attributes.

`etl.store.migrate` passes the connection (the Alembic cookbook's "Sharing a Connection"). For a developer
running the `alembic` command from a checkout, the database comes from AAI_ETL_DATABASE_URL.
"""

import os

from alembic import context
from sqlalchemy import create_engine

from etl.config import DEFAULT_DATABASE_URL
from etl.store.schema import metadata


def run_with(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:

    with create_engine(os.environ.get("AAI_ETL_DATABASE_URL", DEFAULT_DATABASE_URL)).connect() as own:
        run_with(own)
        own.commit()
