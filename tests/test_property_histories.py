"""Random histories of new transcripts, status changes, deletions, aging out, faults and killed runs,
pages out of order, odd timestamps, unknown statuses and malformed pages, serial walks and walks by day
partitions under every reading of created_on: after a final clean run, the table always equals the API.
Pending transcripts get buried under newer ones (stragglers), and some servers ignore the status filter."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from conftest import API_KEY, assert_table_equals_api, empty_database, run_cli, stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.tools.simulator import CREATED_ON_MODES, TS_FORMAT, FakeAssemblyAI, Fault

FAULTS = [
    Fault.status(429, headers={"Retry-After": "0"}),
    Fault.status(429),
    Fault.status(500),
    Fault.status(503),
    Fault.html(502),
    Fault.truncated(),
    Fault.reset(),
    Fault.wrong_shape({"transcripts": []}),
]
# A run "killed" at a request: the 401 ends it there, as a kill would, with every earlier page committed.
KILL = Fault.status(401)


def _without_prev_url(body):
    return {**body, "page_details": {key: value for key, value in body["page_details"].items() if key != "prev_url"}}


def _emptied(body):
    return {**body, "transcripts": []}


def _ids_nulled(body):
    return {**body, "transcripts": [{**item, "id": None} for item in body["transcripts"]]}


# Malformed pages the API may send once in a while: none may cost a transcript.
MALFORMED = [Fault.mangled(_without_prev_url), Fault.mangled(_emptied), Fault.mangled(_ids_nulled)]
# `created` values that must decide nothing: a bare date, the epoch, the far future, a plausible but early one.
ODD_CREATED = ["2026-01-01", "1970-01-01T00:00:00.000000", "2099-01-01T00:00:00.000000", "early"]
PENDING = ("queued", "processing", "throttled")

steps = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 450), st.sampled_from(["queued", "processing", "completed", "throttled"])),
    st.tuples(st.just("odd"), st.integers(1, 3), st.sampled_from(ODD_CREATED)),
    st.tuples(st.just("scramble"), st.booleans()),
    st.tuples(st.just("advance"), st.integers(1, 40)),
    st.tuples(st.just("delete"), st.integers(1, 5)),
    st.tuples(st.just("expire"), st.integers(1, 60)),
    st.tuples(
        st.just("sync"),
        st.lists(st.one_of(st.sampled_from(FAULTS + MALFORMED), st.just(Fault.none())), max_size=6),
        st.one_of(st.none(), st.integers(0, 5)),
        st.booleans(),
    ),
)


def apply(
    step, fake: FakeAssemblyAI, rng: random.Random, database_url: str, config: str, aged_out: set[str], partitions: str
) -> None:
    kind = step[0]
    listing = fake.listing()
    if kind == "add" and step[1]:
        fake.add(step[1], status=step[2])
    elif kind == "odd":
        # One odd item among new ones: below it, above it, and itself, all must be stored.
        created = (fake.clock - timedelta(days=3)).strftime(TS_FORMAT) if step[2] == "early" else step[2]
        fake.add(step[1])
        fake.add(1, created=created)
        fake.add(step[1])
    elif kind == "scramble":
        fake.scramble_pages = step[1]
    elif kind == "advance":
        pending = [item for item in listing if item["status"] in PENDING]
        for item in rng.sample(pending, min(step[1], len(pending))):
            fake.set_status(item["id"], "processing" if item["status"] == "queued" else rng.choice(["completed", "error"]))
    elif kind == "delete" and listing:
        for item in rng.sample(listing, min(step[1], len(listing))):
            fake.delete(item["id"])
    elif kind == "expire":
        # The oldest by `created` first, as the 90-day window rolls: an odd item listed out of place ages by
        # its own `created`, not by its place in the listing.
        for item in sorted(listing, key=lambda item: str(item["created"]))[: step[1]]:
            fake.expire(item["id"])
            aged_out.add(item["id"])
    elif kind == "sync":
        faults, kill_at, full = step[1], step[2], step[3]
        if kill_at is not None:
            faults = faults[:kill_at] + [Fault.none()] * (kill_at - len(faults)) + [KILL]
        fake.fail_next(*faults)
        run_cli(["sync", "--no-hydrate", "--config", config, *(["--full"] if full else [])], env(fake, database_url, partitions))
        fake.clear_faults()  # faults a short run left unused must not leak into the next step


def env(fake, database_url, partitions):
    # "auto" is the default: by days once the first pages show the days are faster.
    return {"ASSEMBLYAI_API_KEY": API_KEY, "ASSEMBLYAI_BASE_URL": fake.base_url, "AAI_ETL_DATABASE_URL": database_url,
            "AAI_ETL_REQUESTS_PER_MINUTE": "600000", "AAI_ETL_PARTITIONS": partitions, "AAI_ETL_PARTITION_DAYS": "3"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(steps, min_size=1, max_size=10),
    seed=st.integers(0, 2**16),
    after_id_mode=st.sampled_from(["oldest", "newest"]),
    ignore_status_filter=st.booleans(),
    partitions=st.sampled_from(["serial", "days", "auto"]),
    created_on_mode=st.sampled_from(CREATED_ON_MODES),
)
def test_table_equals_api_after_any_history(
    kind, tmp_path, history, seed, after_id_mode, ignore_status_filter, partitions, created_on_mode
):
    if partitions != "serial":
        # A `created` that cannot be placed in a UTC day is listed by no day: only the serial walk sees it.
        history = [step for step in history if step[0] != "odd"]
    database_url = empty_database(kind, tmp_path)
    config = tmp_path / "fast.toml"
    config.write_text("backoff_seconds = 0.001\nmax_retries = 1\nread_timeout = 5\n")
    rng = random.Random(seed)
    aged_out: set[str] = set()
    with FakeAssemblyAI(
        api_key=API_KEY, seed=seed, after_id_mode=after_id_mode, ignore_status_filter=ignore_status_filter,
        created_on_mode=created_on_mode,
    ) as fake:
        if partitions == "auto":
            # Dense, a week deep and slow to walk serially, so that the default goes on by days: 250
            # transcripts a day for 8 days, each serial page 50 ms (the days answer at once).
            fake.clock = fake.clock - timedelta(days=9)
            fake.serial_latency = 0.05
            fake.add(2000, spread=timedelta(days=8))
        for step in history:
            apply(step, fake, rng, database_url, str(config), aged_out, partitions)

        # A clean incremental run: every listed transcript is stored with its current status, stragglers deep
        # in the listing included.
        assert run_cli(["sync", "--no-hydrate", "--config", str(config)], env(fake, database_url, partitions)).exit_code == 0
        rows = stored(database_url)
        for item in fake.listing():
            assert rows[item["id"]]["status"] == item["status"], item["id"]

        # A clean full run: the table equals the API, deletions and aged-out rows included.
        result = run_cli(["sync", "--no-hydrate", "--full", "--config", str(config)], env(fake, database_url, partitions))
        assert result.exit_code == 0, result.output
        assert_table_equals_api(database_url, fake, unlisted=aged_out & set(stored(database_url)))
