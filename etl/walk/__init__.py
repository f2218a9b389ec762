"""Which pages of the listing to read: the backwards walk, the walk by UTC days, the re-check of
stragglers, and the planner's decisions about where the walk goes next. Its pages hold list items and
where the walk goes on; the run stores them (etl.sync.pages)."""
