"""The database: the schema and its migrations, the engine, locks, the writes of list items and of the
walk's positions, the change sequence, the run record and the views. The details and the outputs read
and write their own tables through the schema defined here."""
