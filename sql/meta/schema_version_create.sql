CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER     NOT NULL PRIMARY KEY,
    name       VARCHAR     NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
);
