-- The words of each message stored beside it (a generated column, computed once per
-- write), so that a search reads them instead of tokenizing every message it passes,
-- and so that ANALYZE keeps statistics of them (the most common words and how common):
-- with those the planner walks the newest messages for a common word and the GIN index
-- for a rare one (BENCHMARKS.md, section 12). Without positions (`strip`): search
-- matches words, not phrases. The index moves to the column.
ALTER TABLE messages ADD COLUMN body_words tsvector
    GENERATED ALWAYS AS (strip(to_tsvector('simple', body))) STORED;
DROP INDEX IF EXISTS messages_search;
CREATE INDEX messages_search ON messages USING GIN (body_words);
