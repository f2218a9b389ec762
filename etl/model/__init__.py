"""What every stage shares: a list item and its statuses, a position in the listing, how a value is made
storable and how presigned credentials are found. Nothing here talks to the API or the database."""
