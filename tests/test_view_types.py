"""The views give the same JSON on both databases: a count is a whole number, every other figure a double."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from conftest import cli_env, empty_database, run_cli
from sqlalchemy import create_engine, text

from etl.outputs import stats
from etl.store.views import VIEWS


def test_stats_and_every_view_give_the_same_json_types_on_both_databases(fake, tmp_path):
    fake.add(36)
    outputs, types = {}, {}
    for kind in ("sqlite", "postgresql"):
        url = empty_database(kind, tmp_path)
        env = cli_env(fake, url)
        assert run_cli(["sync"], env).exit_code == 0
        outputs[kind] = {
            view: run_cli(["stats", "--view", view, "--format", "json"], env).stdout
            for view in ("transcripts", *stats.VIEWS)
        }
        engine = create_engine(url)
        with engine.connect() as conn:
            types[kind] = {
                name: {column: {type(value).__name__ for value in values if value is not None}
                       for column, values in zip(result.keys(), zip(*result.all(), strict=True), strict=True)}
                for name in VIEWS for result in [conn.execute(text(f"SELECT * FROM {name}"))]
            }
        engine.dispose()
    assert '"utterances": ' in outputs["sqlite"]["talk-time"]
    for view in stats.VIEWS:
        assert outputs["sqlite"][view] == outputs["postgresql"][view], view
    # The turnaround's seconds differ below a millisecond (SQLite computes them from julian days): their types do not.
    daily = {kind: json.loads(output["transcripts"]) for kind, output in outputs.items()}
    assert [{key: type(value) for key, value in row.items()} for row in daily["sqlite"]] == [
        {key: type(value) for key, value in row.items()} for row in daily["postgresql"]
    ]
    for name, columns in types["postgresql"].items():
        for column, kinds in columns.items():
            assert Decimal.__name__ not in kinds, (name, column)
            # SQLite keeps a day as text; every number has the same type on both.
            as_sqlite = {str.__name__ if kind == date.__name__ else kind for kind in kinds}
            assert as_sqlite == types["sqlite"][name][column], (name, column, kinds)
