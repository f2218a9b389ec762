{# Every row belongs to a transcript: its (account, transcript_id) is a row of stg_transcripts. #}
{% test related_to_transcript(model) %}
select child.account, child.transcript_id
from {{ model }} as child
left join {{ ref('stg_transcripts') }} as t
  on t.account = child.account and t.transcript_id = child.transcript_id
where t.transcript_id is null
{% endtest %}
