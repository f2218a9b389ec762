"""Tools beside the job, for people rather than for the sync: the API simulator, the demo and `check`.
The sync never imports them."""
