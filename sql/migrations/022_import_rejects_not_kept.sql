-- acbill schema: bounded import rejects (SPEC 6, issue 20).
--
-- An import keeps at most the first 10,000 rejected rows of a file in
-- usage.import_rejects (each with up to 64 KiB of raw text); the others
-- are counted in usage.imports.rejects_not_kept (added by migration 019
-- for rate cards) by reason, the reason's quoted values replaced by
-- '...' (for example {"UsageId '...' is not a GUID": 1990000}), so that
-- a hostile file cannot fill the database.  usage.imports.rejected still
-- counts every rejected row: rejected = the rows in usage.import_rejects
-- + the sum of rejects_not_kept.  Null when every reject was kept.
COMMENT ON COLUMN usage.imports.rejects_not_kept IS
    'rejected rows not kept in usage.import_rejects (past the first 10,000 of the file), counted by reason';
