-- Steps that change stored data in ways SQL cannot (in Rust, at start-up, once each):
-- a step's name is recorded here when it has run. The first: emails stored before they
-- were NFKC-normalized are normalized (`Store::normalize_legacy_emails`).
CREATE TABLE data_steps (
    name    TEXT   PRIMARY KEY,
    done_at BIGINT NOT NULL
);
