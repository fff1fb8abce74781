-- The natural key of a table, as declared by its PRIMARY KEY: upserts replace on it.
SELECT constraint_column_names
FROM duckdb_constraints()
WHERE table_name = $table AND constraint_type = 'PRIMARY KEY' AND schema_name = 'main';
