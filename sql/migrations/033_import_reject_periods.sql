-- Which billing periods a rejected import row touches, so that the finance
-- summary of a period lists the rows of Microsoft's data that did not load
-- and may be missing from it (docs/billing-rules.md 6, "Rejected rows in
-- the finance summary").
--
-- The rule, per row of usage.import_rejects:
-- * a licence snapshot row (sources licences-*) touches every month from
--   the snapshot's instant (--at) to the month the import ran, in the
--   tenant's time zone: the licences it did not load count from then on;
-- * any other row whose raw text holds a start time that can be read (a
--   call export: the first ISO 8601 date and time of the CSV row, which is
--   its Start Time; a Graph page: its "startDateTime"; a time without an
--   offset is UTC, as Microsoft writes it) touches the month of that start
--   time in the tenant's time zone;
-- * any other row touches the month the import ran and the month before
--   (Microsoft's usage data arrives a day or two late, so a file read on
--   2 November usually holds October).
-- A tenant time zone PostgreSQL does not know is taken as UTC here.

-- The start time of a rejected row's raw text, or NULL where there is none
-- that PostgreSQL can read (a malformed date is the usual reason for the
-- rejection itself).
CREATE OR REPLACE FUNCTION usage.raw_start_time(source text, raw text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    t text;
BEGIN
    IF raw IS NULL THEN
        RETURN NULL;
    END IF;
    IF source IN ('graph-calls', 'graph-pull') THEN
        t := substring(raw FROM '"startDateTime"\s*:\s*"([^"]{10,40})"');
    ELSE
        t := substring(raw FROM
            '(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?'
            '( ?(Z|[+-]\d{2}(:?\d{2})?))?)');
    END IF;
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    IF t ~ '(Z|[+-]\d{2}(:?\d{2})?)$' THEN
        RETURN t::timestamptz;
    END IF;
    RETURN t::timestamp AT TIME ZONE 'UTC';
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- A time zone name usable with AT TIME ZONE, else 'UTC'.
CREATE OR REPLACE FUNCTION usage.zone_or_utc(zone text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM now() AT TIME ZONE zone;
    RETURN zone;
EXCEPTION WHEN others THEN
    RETURN 'UTC';
END
$$;

-- One row per rejected row and period it touches (period: the first day of
-- the month).  A row may touch two periods (no start time) or several (a
-- licence snapshot).  An import that ran before the month preceding a
-- period cannot hold that period's calls (they had not happened), so a
-- query for one period keeps the imports that ran from the month before it
-- on (started_at), and the view is not computed for every reject ever.
CREATE OR REPLACE VIEW usage.import_reject_periods AS
SELECT r.import_id, r.line_no, i.tenant_id, i.source, i.started_at, p.period
  FROM usage.import_rejects r
  JOIN usage.imports i USING (import_id)
  LEFT JOIN usage.tenants t ON t.tenant_id = i.tenant_id
 CROSS JOIN LATERAL (SELECT usage.zone_or_utc(coalesce(t.time_zone, 'UTC'))
                            AS tz) z
 CROSS JOIN LATERAL (SELECT CASE WHEN i.source NOT LIKE 'licences%'
                            THEN usage.raw_start_time(i.source, r.raw) END
                            AS st) s
 CROSS JOIN LATERAL (
    SELECT date_trunc('month', s.st AT TIME ZONE z.tz)::date AS period
     WHERE s.st IS NOT NULL
    UNION ALL
    SELECT m::date
      FROM generate_series(
             date_trunc('month', least(coalesce(i.snapshot_at, i.started_at),
                                       i.started_at) AT TIME ZONE z.tz),
             date_trunc('month', i.started_at AT TIME ZONE z.tz),
             interval '1 month') AS m
     WHERE i.source LIKE 'licences%'
    UNION ALL
    SELECT m::date
      FROM generate_series(
             date_trunc('month', i.started_at AT TIME ZONE z.tz)
               - interval '1 month',
             date_trunc('month', i.started_at AT TIME ZONE z.tz),
             interval '1 month') AS m
     WHERE s.st IS NULL AND i.source NOT LIKE 'licences%') p;
