-- acbill schema, version 3: the upload ledger (job/upload.h).
--
-- Every file to deliver gets a row before the first attempt.  A row is
-- `pending` until the file is delivered (`done`), or `superseded` when newer
-- content for the same target was queued before it could be delivered
-- (SHA256SUMS and the finance summary are rewritten by later runs).  Rows
-- are history: they are never deleted, and a delivered row is never reset.

CREATE TABLE billing.uploads (
    upload_id       bigserial PRIMARY KEY,
    period          date NOT NULL CHECK (extract(day FROM period) = 1),
    file_name       text NOT NULL
                    CHECK (file_name <> '' AND file_name !~ '^\.'
                           AND file_name !~ '[/[:cntrl:]]'),
    local_path      text NOT NULL CHECK (local_path ~ '^/'),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes           bigint NOT NULL CHECK (bytes >= 0),
    base_url        text NOT NULL,
    target_url      text NOT NULL,
    invoice_no      text REFERENCES billing.invoices (invoice_no),
    run_id          bigint REFERENCES billing.runs (run_id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'done', 'superseded')),
    attempts        int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    http_status     int,
    last_error      text,
    queued_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    CHECK ((status = 'done') = (delivered_at IS NOT NULL))
);

-- At most one pending row per target: enqueuing the same file twice is a
-- no-op, and new content for a target replaces (supersedes) the old one.
CREATE UNIQUE INDEX uploads_one_pending_per_target
    ON billing.uploads (target_url) WHERE status = 'pending';
CREATE INDEX uploads_target ON billing.uploads (target_url, upload_id);
CREATE INDEX uploads_pending ON billing.uploads (base_url, upload_id)
    WHERE status = 'pending';

-- Identity, content and destination of a row never change; only the
-- delivery bookkeeping does, and a delivered or superseded row is final.
CREATE FUNCTION billing.uploads_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'upload % cannot be deleted', OLD.upload_id;
    END IF;
    IF OLD.status <> 'pending'
       OR (to_jsonb(NEW) - 'status' - 'attempts' - 'http_status'
           - 'last_error' - 'last_attempt_at' - 'delivered_at')
          IS DISTINCT FROM
          (to_jsonb(OLD) - 'status' - 'attempts' - 'http_status'
           - 'last_error' - 'last_attempt_at' - 'delivered_at') THEN
        RAISE EXCEPTION 'upload % cannot be changed (status %)',
            OLD.upload_id, OLD.status;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER uploads_guard BEFORE UPDATE OR DELETE ON billing.uploads
    FOR EACH ROW EXECUTE FUNCTION billing.uploads_guard();
