"""The AssemblyAI API over one requests session: authentication, the request budget, retries and typed
errors. It answers pages of the listing and transcript bodies; it knows nothing of the database."""
