-- Presence across server instances lives in PostgreSQL only (instances share it through
-- LISTEN/NOTIFY); a SQLite server is a single instance and keeps presence in memory.
-- This migration keeps the two migration sequences numbered alike.
SELECT 1;
