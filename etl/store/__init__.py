"""The database: the schema and its migrations, the engine, locks, the writes of pages and positions,
the change sequence, the run record and the views. Everything that reads or writes a table lives here."""
