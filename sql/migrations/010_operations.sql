-- acbill schema: operations under faults (issue 14).
--
-- billing.runs: a run whose process is gone (killed, machine lost) is
-- marked `killed` by the next run of any period; the run records its
-- process id and its output directory (a --join must write to the same).
-- billing.run_tenants: the sysexits status a failed tenant failed with, so
-- that a statement timeout (75) is not reported as bad data (65).
-- billing.uploads: exactly-once delivery after a kill, and the operator's
-- `acbill upload --cancel` and `--retarget`:
--   part_url   the temporary name on the server the current attempt uses
--              (deterministic per content); set before the first byte is
--              sent, cleared once the temporary is moved or removed, so
--              the next run removes or reuses what a killed one left;
--   etag       the server's ETag of the delivered file (or of the
--              temporary before its MOVE, which keeps it on WebDAV
--              servers), so a later run recognises its own file without
--              downloading it;
--   sent_at    when the content was last sent in full (the PUT answered
--              2xx), whether or not the job lived to record the MOVE;
--   note       why the row was cancelled, retargeted or found delivered;
--   replaced_by the row a retargeted row continues as.
-- Statuses `cancelled` and `retargeted` are final like `done` and
-- `superseded`; no row is ever deleted.

ALTER TABLE billing.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE billing.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'ok', 'failed', 'killed'));
ALTER TABLE billing.runs ADD COLUMN pid int;
ALTER TABLE billing.runs ADD COLUMN out_dir text;

ALTER TABLE billing.run_tenants ADD COLUMN exit_status int
    CHECK (exit_status BETWEEN 1 AND 255);

ALTER TABLE billing.uploads DROP CONSTRAINT uploads_status_check;
ALTER TABLE billing.uploads ADD CONSTRAINT uploads_status_check
    CHECK (status IN ('pending', 'done', 'superseded', 'cancelled',
                      'retargeted'));
ALTER TABLE billing.uploads ADD COLUMN part_url text;
ALTER TABLE billing.uploads ADD COLUMN etag text;
ALTER TABLE billing.uploads ADD COLUMN sent_at timestamptz;
ALTER TABLE billing.uploads ADD COLUMN note text;
ALTER TABLE billing.uploads ADD COLUMN replaced_by bigint
    REFERENCES billing.uploads (upload_id);
ALTER TABLE billing.uploads ADD CHECK ((status = 'retargeted') =
                                       (replaced_by IS NOT NULL));

-- Rows whose temporary file may still be on a server, for the clean-up
-- of every delivery pass.
CREATE INDEX uploads_parts ON billing.uploads (base_url)
    WHERE part_url IS NOT NULL;

-- Identity, content and destination of a row never change.  A pending row
-- may change its delivery bookkeeping and its status; a final row
-- (done, superseded, cancelled, retargeted) only the record of its
-- temporary file on the server (part_url, cleared when it is removed).
CREATE OR REPLACE FUNCTION billing.uploads_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bookkeeping text[] := ARRAY['status', 'attempts', 'http_status',
        'last_error', 'last_attempt_at', 'delivered_at', 'part_url', 'etag',
        'sent_at', 'note', 'replaced_by'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'upload % cannot be deleted', OLD.upload_id;
    END IF;
    IF OLD.status <> 'pending' THEN
        IF (to_jsonb(NEW) - 'part_url') IS DISTINCT FROM
           (to_jsonb(OLD) - 'part_url') THEN
            RAISE EXCEPTION 'upload % cannot be changed (status %)',
                OLD.upload_id, OLD.status;
        END IF;
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - bookkeeping) IS DISTINCT FROM
       (to_jsonb(OLD) - bookkeeping) THEN
        RAISE EXCEPTION 'upload % cannot be changed (status %)',
            OLD.upload_id, OLD.status;
    END IF;
    RETURN NEW;
END $$;
