-- Per transcript and speaker: turns, seconds spoken and the share of the transcript's talk time.
with per_speaker as (
    select account, transcript_id, speaker, count(*) as utterances, sum(duration_seconds) as talk_seconds
    from {{ ref('stg_utterances') }}
    group by account, transcript_id, speaker
)
select
    per_speaker.*,
    talk_seconds / nullif(sum(talk_seconds) over (partition by account, transcript_id), 0) as talk_ratio
from per_speaker
