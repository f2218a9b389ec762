"""The audio intelligence views give, on both databases, the figures computed here from the bodies."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import requests
from conftest import API_KEY, cli_env, run_cli
from sqlalchemy import create_engine, text

from etl.tools.simulator import intelligence_profile

_FIRST = datetime.now(timezone.utc).replace(tzinfo=None, hour=22, minute=0, second=0, microsecond=0) - timedelta(days=5)


def stats_view(fake, database_url, view):
    result = run_cli(["stats", "--view", view, "--format", "json"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_views_give_the_figures_of_the_bodies(database_url, fake):
    bodies = {}
    for n in range(36):
        created = _FIRST + timedelta(minutes=5 * n)  # crosses midnight UTC at n = 24
        (item,) = fake.add(1, created=created.isoformat(timespec="microseconds"),
                           completed=(created + timedelta(seconds=9)).isoformat(timespec="microseconds"))
        body = requests.get(f"{fake.base_url}/v2/transcript/{item['id']}", headers={"Authorization": API_KEY}).json()
        bodies[item["id"]] = (created.date().isoformat(), body)
    assert {intelligence_profile(i) for i in bodies} == {"none", "all", "some", "malformed"}
    result = run_cli(["sync"], cli_env(fake, database_url))
    assert result.exit_code == 0, result.output

    sentiments, talk, talk_in, entities, entity_in, topics = Counter(), Counter(), defaultdict(set), Counter(), defaultdict(set), Counter()
    utterance_count = Counter()
    for transcript_id, (day, body) in bodies.items():
        for result_ in body["sentiment_analysis_results"] or []:
            sentiments[day, result_["sentiment"]] += 1
        for utterance in body["utterances"] or []:
            talk[day, utterance["speaker"]] += utterance["end"] - utterance["start"]
            talk_in[day, utterance["speaker"]].add(transcript_id)
            utterance_count[day, utterance["speaker"]] += 1
        if isinstance(body["entities"], list):
            for entity in body["entities"]:
                entities[day, entity["entity_type"]] += 1
                entity_in[day, entity["entity_type"]].add(transcript_id)
        for label in ((body["iab_categories_result"] or {}).get("summary") or {}):
            topics[day, label] += 1

    def day_total(counter, day):
        return sum(count for (d, _), count in counter.items() if d == day)

    expected_sentiment = sorted(
        ({"day": day, "account": "default", "sentiment": s, "results": n, "share": n / day_total(sentiments, day)}
         for (day, s), n in sentiments.items()),
        key=lambda r: (r["day"], r["sentiment"]))
    assert len({r["day"] for r in expected_sentiment}) == 2
    assert sorted(stats_view(fake, database_url, "sentiment"), key=lambda r: (r["day"], r["sentiment"])) == expected_sentiment

    expected_talk = sorted(
        ({"day": day, "account": "default", "speaker": speaker, "transcripts": len(talk_in[day, speaker]),
          "utterances": utterance_count[day, speaker], "talk_seconds": ms / 1000, "talk_ratio": ms / day_total(talk, day)}
         for (day, speaker), ms in talk.items()),
        key=lambda r: (r["day"], r["speaker"]))
    assert sorted(stats_view(fake, database_url, "talk-time"), key=lambda r: (r["day"], r["speaker"])) == expected_talk

    expected_entities = sorted(
        ({"day": day, "account": "default", "entity_type": kind, "mentions": n, "transcripts": len(entity_in[day, kind])}
         for (day, kind), n in entities.items()),
        key=lambda r: (r["day"], r["entity_type"]))
    shown = stats_view(fake, database_url, "entity-types")
    assert sorted(shown, key=lambda r: (r["day"], r["entity_type"])) == expected_entities
    newest = [r for r in shown if r["day"] == shown[0]["day"]]
    assert [r["mentions"] for r in newest] == sorted((r["mentions"] for r in newest), reverse=True)  # top types first

    expected_topics = sorted(
        ({"day": day, "account": "default", "label": label, "transcripts": n} for (day, label), n in topics.items()),
        key=lambda r: (r["day"], r["label"]))
    assert sorted(stats_view(fake, database_url, "topics"), key=lambda r: (r["day"], r["label"])) == expected_topics

    table = run_cli(["stats", "--view", "sentiment"], cli_env(fake, database_url))
    assert table.stdout.splitlines()[0].split() == ["day", "account", "sentiment", "results", "share"]


def test_talk_ratio_per_transcript_adds_up_to_one(database_url, fake):
    fake.add(12)
    assert run_cli(["sync"], cli_env(fake, database_url)).exit_code == 0
    engine = create_engine(database_url)
    with engine.connect() as conn:
        ratios = conn.execute(text("SELECT transcript_id, sum(talk_ratio) FROM speaker_talk_time GROUP BY transcript_id")).all()
    engine.dispose()
    assert ratios and all(abs(total - 1) < 1e-9 for _, total in ratios)
