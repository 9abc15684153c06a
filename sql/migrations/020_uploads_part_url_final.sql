-- acbill schema: billing.uploads' temporary on final rows (issue 20).
--
-- A final row (done, superseded, cancelled, retargeted) may still record
-- the temporary file its delivery left on the server (part_url), so that
-- the next delivery removes it.  Until now the guard let part_url change
-- freely on such a row: anyone who could update billing.uploads could
-- point it at any URL or local path, and the next delivery sent a DELETE
-- there with the upload token (or removed that local file).  From now on
-- a final row's part_url may only be cleared (set to NULL, when the
-- temporary is gone), never set or changed, nor set by the update that
-- makes a pending row final.  The job itself also deletes
-- only the temporary it would have made for that row on the configured
-- upload URL (job/deliver/upload.c), whatever the row says.
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
           (to_jsonb(OLD) - 'part_url')
           OR (NEW.part_url IS NOT NULL
               AND NEW.part_url IS DISTINCT FROM OLD.part_url) THEN
            RAISE EXCEPTION 'upload % cannot be changed (status %)',
                OLD.upload_id, OLD.status;
        END IF;
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - bookkeeping) IS DISTINCT FROM
       (to_jsonb(OLD) - bookkeeping)
       OR (NEW.status <> 'pending' AND NEW.part_url IS NOT NULL
           AND NEW.part_url IS DISTINCT FROM OLD.part_url) THEN
        RAISE EXCEPTION 'upload % cannot be changed (status %)',
            OLD.upload_id, OLD.status;
    END IF;
    RETURN NEW;
END $$;
