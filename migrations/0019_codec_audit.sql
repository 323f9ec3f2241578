-- Every request to the codec server (admin/codec_server.py), allowed or refused: who asked, when, from where,
-- in which Temporal namespace, for how many payloads. Never the payloads themselves: this table must not
-- become a copy of the histories it protects. `username` and `role` are copied (not only `user_id`) so the
-- trail stays readable after a user is renamed or changes role. `payload_count` is NULL for a request refused
-- before its body was read (no login, wrong role, wrong origin): an unauthenticated body is never parsed.
CREATE TABLE codec_audit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    operation     text NOT NULL CHECK (operation IN ('decode', 'encode')),
    outcome       text NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    reason        text,
    user_id       bigint,
    username      text,
    role          text,
    namespace     text,
    payload_count integer CHECK (payload_count >= 0),
    erased_count  integer NOT NULL DEFAULT 0 CHECK (erased_count >= 0),
    client_address text,
    CHECK (outcome = 'allowed' OR reason IS NOT NULL)
);
CREATE INDEX codec_audit_at_idx ON codec_audit (at DESC);
CREATE INDEX codec_audit_user_idx ON codec_audit (user_id, at DESC);

-- Append-only: an operator who may decode must not be able to hide that they did through the application.
CREATE FUNCTION codec_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'codec_audit is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER codec_audit_no_update BEFORE UPDATE ON codec_audit
    FOR EACH ROW EXECUTE FUNCTION codec_audit_append_only();
