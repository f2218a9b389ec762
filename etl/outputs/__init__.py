"""What people and other tools read: exports and Parquet files, `stats` and `status`, metrics, the run's
log events and its progress display."""
