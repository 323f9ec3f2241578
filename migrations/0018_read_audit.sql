-- Who read what in the admin UI (admin/read_audit.py): dossier views, letter downloads, portfolio searches and
-- reveals of masked contact data (with the reason given). Append-only: a row, once written, is evidence, so
-- PostgreSQL itself refuses to change or remove it, whoever asks. The only way out is retention:
-- read_audit_purge(older_than) deletes rows older than its bound and nothing else.
--
-- It names no borrower: a search stores which filters were used and whether free text was typed (with a keyed
-- hash of it when a key is configured), never the text, which may be a name.
CREATE TABLE read_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     bigint NOT NULL,
    username    text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL CHECK (action IN ('dossier_view', 'document_download', 'search', 'reveal')),
    loan_id     text,
    document_id text,
    field       text,           -- reveal: which value (phone, email, postal_address)
    reason      text,           -- reveal: why, as the user typed it
    detail      jsonb NOT NULL DEFAULT '{}',
    client_addr text
);
CREATE INDEX read_audit_at_idx ON read_audit (at DESC, id DESC);
CREATE INDEX read_audit_user_idx ON read_audit (username, at DESC);
CREATE INDEX read_audit_loan_idx ON read_audit (loan_id, at DESC) WHERE loan_id IS NOT NULL;

-- Refuses every UPDATE, and every DELETE except one made by read_audit_purge() (it is on the call stack) of a
-- row older than the bound that function set for its own transaction: setting the bound by hand lets nothing
-- go, and the function only ever lets old rows go.
CREATE FUNCTION read_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bound text := current_setting('overdue.read_audit_purge_before', true);
    stack text;
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(bound, '') <> '' AND OLD.at < bound::timestamptz THEN
        GET DIAGNOSTICS stack = PG_CONTEXT;
        IF position('function read_audit_purge(' IN stack) > 0 THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'read_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER read_audit_append_only BEFORE UPDATE OR DELETE ON read_audit
    FOR EACH ROW EXECUTE FUNCTION read_audit_append_only();

CREATE FUNCTION read_audit_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'read_audit is append-only: TRUNCATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER read_audit_no_truncate BEFORE TRUNCATE ON read_audit
    FOR EACH STATEMENT EXECUTE FUNCTION read_audit_no_truncate();

-- Retention: the rows older than `older_than`, deleted; returns how many. SECURITY DEFINER, so a role that
-- may only EXECUTE it (and INSERT/SELECT on the table) can purge old rows without any DELETE privilege.
CREATE FUNCTION read_audit_purge(older_than timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    removed bigint;
BEGIN
    PERFORM set_config('overdue.read_audit_purge_before', older_than::text, true);
    DELETE FROM read_audit WHERE at < older_than;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('overdue.read_audit_purge_before', '', true);
    RETURN removed;
END;
$$;

REVOKE UPDATE, DELETE, TRUNCATE ON read_audit FROM PUBLIC;
