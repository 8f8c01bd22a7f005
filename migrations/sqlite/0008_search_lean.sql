-- The full-text index made lighter to keep current on every send: search matches words
-- anywhere in a message and ranks by recency, so the index keeps each word's message ids
-- only (`detail = none`: no columns, no positions) and no per-message word counts
-- (`columnsize = 0`, which only ranking by relevance reads): over a million messages the
-- database is a sixth smaller and they store 15 % faster (BENCHMARKS.md section 12). The triggers of 0007
-- stay; the index is rebuilt from the messages.
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    detail = none,
    columnsize = 0
);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
