{# No timestamp later than now (with 15 minutes for clocks that disagree). #}
{% test not_in_future(model, column_name) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} > current_timestamp + interval '15 minutes'
{% endtest %}
