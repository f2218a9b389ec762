"""The AssemblyAI API: the client (pooled requests sessions, authentication, retries, typed errors) and the
pacer that keeps every thread of a run within the request budget. It answers pages of the listing and
transcript bodies; it knows nothing of the database."""
