-- Per-loan data keys of the payload codec (privacy/data_keys.py). Every payload of a loan's workflows (the
-- loan and its children) is encrypted with its loan's data key; the key itself is stored only wrapped
-- (encrypted) by a master key of the key ring. Erasure wipes wrapped_key: the loan's histories can no longer
-- be decrypted anywhere, while the row remains as proof of when.
-- Payload metadata carries data_key_id (random), never the loan id.
CREATE TABLE IF NOT EXISTS loan_data_keys (
    loan_id       text PRIMARY KEY,
    data_key_id   uuid NOT NULL UNIQUE,
    wrapped_key   bytea,
    master_key_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    destroyed_at  timestamptz,
    CONSTRAINT loan_data_keys_live_or_destroyed CHECK (
        (destroyed_at IS NULL AND wrapped_key IS NOT NULL AND master_key_id IS NOT NULL)
        OR (destroyed_at IS NOT NULL AND wrapped_key IS NULL)
    )
);
