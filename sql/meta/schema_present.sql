-- Whether the file holds a HYDRA schema, without creating anything (safe read-only).
SELECT count(*) > 0
FROM duckdb_tables()
WHERE schema_name = 'main' AND table_name = 'schema_version';
