"""One transcript's body: fetching the details of final transcripts (hydration) and deriving the words,
audio-intelligence and extra-detail tables from it."""
