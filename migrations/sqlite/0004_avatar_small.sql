-- Avatars come in two sizes: `avatar_id` (256 px) and `avatar_small_id` (64 px).
ALTER TABLE users ADD COLUMN avatar_small_id TEXT;
