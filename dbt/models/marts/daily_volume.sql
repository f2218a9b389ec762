-- Per account, UTC day of creation and status: how many transcripts and how many hours of audio.
select
    account,
    created_day as day,
    status,
    count(*) as transcripts,
    coalesce(sum(audio_duration_seconds), 0) / 3600.0 as audio_hours
from {{ ref('stg_transcripts') }}
where created_day is not null and deleted_at is null
group by account, created_day, status
