-- One row per transcript in its latest state, with clean names and types.
with versions as (
    select *, row_number() over (partition by account, id order by change_seq desc) as version_rank
    from {{ source('aai_etl', 'transcripts') }}
)
select
    account,
    id as transcript_id,
    status,
    status in ('queued', 'processing', 'completed', 'error') as is_known_status,
    cast(created as timestamp with time zone) as created_at,
    cast(completed as timestamp with time zone) as completed_at,
    {{ utc_day('created') }} as created_day,
    cast(audio_duration as double precision) as audio_duration_seconds,
    cast(confidence as double precision) as confidence,
    language_code,
    speech_model_used,
    error as error_message,
    text,
    cast(first_seen_at as timestamp with time zone) as first_seen_at,
    cast(changed_at as timestamp with time zone) as changed_at,
    cast(deleted_at as timestamp with time zone) as deleted_at,
    cast(unlisted_at as timestamp with time zone) as unlisted_at,
    cast(hydrated_at as timestamp with time zone) as details_fetched_at,
    cast(change_seq as bigint) as change_seq
from versions
where version_rank = 1
