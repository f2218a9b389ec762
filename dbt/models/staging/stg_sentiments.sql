-- Sentiment per sentence.
select
    account,
    transcript_id,
    position,
    sentiment,
    cast(confidence as double precision) as confidence,
    speaker,
    start_ms / 1000.0 as start_seconds,
    end_ms / 1000.0 as end_seconds,
    text
from {{ current_rows('transcript_sentiments') }} as sentiments
