"""aai-etl: keep AssemblyAI transcripts in your own SQL database."""

__version__ = "0.1.0"
