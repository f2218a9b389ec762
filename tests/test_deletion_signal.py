"""A deletion is recognised by the API's one signal, the `audio_url` sentinel, and by nothing else."""

from __future__ import annotations

from conftest import cli_env, run_cli, stored
from sqlalchemy import select

from etl.store.engine import make_engine
from etl.store.schema import transcript_bodies
from etl.tools.simulator import Fault


def test_a_live_transcript_whose_text_reads_deleted_by_user_is_kept(database_url, fake):
    """Its text, details and body were purged as if deleted, with no warning, on every fetch."""
    live, deleted, other = fake.add(3)
    fake.break_transcript(live["id"], Fault.mangled(lambda body: body | {"text": "Deleted by user."}))
    fake.delete(deleted["id"])
    result = run_cli(["sync"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    rows = stored(database_url)
    assert rows[live["id"]]["text"] == "Deleted by user." and rows[live["id"]]["deleted_at"] is None
    assert rows[live["id"]]["confidence"] == 0.93
    assert rows[deleted["id"]]["deleted_at"] is not None and rows[deleted["id"]]["text"] is None
    engine = make_engine(database_url, read_only=True)
    with engine.connect() as conn:
        bodies = {row.transcript_id: row.body for row in conn.execute(select(transcript_bodies))}
    engine.dispose()
    assert sorted(bodies) == sorted([live["id"], other["id"]])
    assert bodies[live["id"]]["text"] == "Deleted by user."
