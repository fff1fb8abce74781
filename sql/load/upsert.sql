-- Idempotent load on the table's natural key (its PRIMARY KEY). {table} is an identifier
-- checked against the live schema and quoted by warehouse.sqlfiles.render; the rows come
-- from the registered batch relation, never from the text of the statement.
INSERT OR REPLACE INTO {table} BY NAME SELECT * FROM upsert_batch;
