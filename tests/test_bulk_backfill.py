"""A first backfill writes its pages in bulk (COPY on PostgreSQL, a plain INSERT on SQLite), looking no id up;
when the database refuses a page that way, the page is upserted as any other, so nothing is lost or miscounted."""

from __future__ import annotations

from conftest import assert_table_equals_api, stored, summary_json, sync
from sqlalchemy import create_engine, select

from etl.store.schema import transcript_status_changes
from etl.tools.simulator import Fault


def status_changes(database_url: str) -> list[tuple[str, str | None, str | None]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        changes = transcript_status_changes
        rows = conn.execute(select(changes.c.transcript_id, changes.c.old_status, changes.c.new_status)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_an_id_listed_again_in_a_first_backfill_is_counted_once_and_its_status_change_kept(database_url, fake):
    """The API should not list a transcript on two pages; if it does (here: once as listed, once as it
    moved on while the walk ran), the second page cannot be inserted in bulk and is upserted instead."""
    fake.add(200)
    (moving,) = fake.add(1, status="processing")
    fake.add(199)
    page_one = fake.listing()[:200]
    again = next(item for item in page_one if item["status"] == "completed")
    moved = {**moving, "status": "completed", "completed": moving["created"]}
    fake.fail_next(Fault.none(), Fault.mangled(lambda body: {**body, "transcripts": [*body["transcripts"], again, moved]}))

    result = sync(fake, database_url, "--log-format", "json")
    assert result.exit_code == 0, result.output
    summary = summary_json(result)
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (400, 1, 1)
    assert len(stored(database_url)) == 400
    assert status_changes(database_url) == [(moving["id"], "processing", "completed")]
    assert stored(database_url)[moving["id"]]["status"] == "completed"

    fake.set_status(moving["id"], "completed", completed=moving["created"])
    assert_table_equals_api(database_url, fake)
