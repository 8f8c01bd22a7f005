-- Photos: a message of kind 'photo' carries an image (its caption in `body`) and a
-- thumbnail for the timeline, both files of kind 'photo' readable by the conversation's
-- members. The message row describes both, so history needs no join.
ALTER TABLE messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_kind_check CHECK (kind IN ('text', 'voice', 'photo'));
ALTER TABLE files DROP CONSTRAINT files_kind_check;
ALTER TABLE files ADD CONSTRAINT files_kind_check CHECK (kind IN ('voice', 'avatar', 'photo'));

ALTER TABLE messages ADD COLUMN file_width INTEGER;
ALTER TABLE messages ADD COLUMN file_height INTEGER;
ALTER TABLE messages ADD COLUMN thumb_id TEXT REFERENCES files (id);
ALTER TABLE messages ADD COLUMN thumb_mime TEXT;
ALTER TABLE messages ADD COLUMN thumb_size BIGINT;
ALTER TABLE messages ADD COLUMN thumb_width INTEGER;
ALTER TABLE messages ADD COLUMN thumb_height INTEGER;
