-- Full-text search of message text: a GIN index over the body's words ('simple'
-- configuration: case folded, no stemming, as messages come in every language). An
-- edit or a deletion (which empties the body) updates it with the row.
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', body)) WHERE body <> '';
