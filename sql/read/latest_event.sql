-- The newest fact of a table: where an incremental fetch resumes.
SELECT max(ts_event) FROM query_table($table);
