"""One transcript's details. Hydration fetches the body of each final transcript and stores it, with its
words and its extra details when asked for. Derivation turns the body into the audio intelligence tables.
Both read a body's values with the same readers (values.py)."""
