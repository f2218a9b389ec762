{# Whether the sources are the Parquet change feed (DuckDB), where a row may appear once per export that
   carried it, rather than aai-etl's own tables, where each row is there once. #}
{% macro from_feed() %}{{ return(target.type == 'duckdb') }}{% endmacro %}

{# The UTC calendar day of a timestamp. #}
{% macro utc_day(column) -%}
  {%- if target.type == 'postgres' -%}({{ column }} at time zone 'UTC')::date
  {%- else -%}cast(timezone('UTC', {{ column }}) as date){%- endif -%}
{%- endmacro %}

{# The rows of a child table that belong to each transcript's latest state. In the feed, a transcript's child
   rows travel with it, each carrying its change_seq: the current ones carry the latest. #}
{% macro current_rows(table) -%}
  {%- if from_feed() -%}
    (select child.* from {{ source('aai_etl', table) }} as child
     join {{ ref('stg_transcripts') }} as t
       on t.account = child.account and t.transcript_id = child.transcript_id and t.change_seq = child.change_seq)
  {%- else -%}
    {{ source('aai_etl', table) }}
  {%- endif -%}
{%- endmacro %}
