-- Speaker turns, with times in seconds from the audio's start.
select
    account,
    transcript_id,
    position,
    speaker,
    start_ms / 1000.0 as start_seconds,
    end_ms / 1000.0 as end_seconds,
    (end_ms - start_ms) / 1000.0 as duration_seconds,
    cast(confidence as double precision) as confidence,
    text
from {{ current_rows('transcript_utterances') }} as utterances
