SELECT count(*) FROM query_table($table);
