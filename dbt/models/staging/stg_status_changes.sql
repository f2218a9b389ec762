-- Every status change aai-etl saw, oldest first per transcript.
select
    account,
    transcript_id,
    old_status,
    new_status,
    cast(observed_at as timestamp with time zone) as observed_at
from {{ current_rows('transcript_status_changes') }} as changes
