"""Which pages of the listing to read: the backwards walk, the walk by UTC days, the re-check of
stragglers, and the planner's decisions about where the walk goes next. It yields list items and
positions; storing them is the store's job."""
