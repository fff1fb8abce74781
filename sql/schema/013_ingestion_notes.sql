-- What a run could not get from its sources, one line per feed part: a backfill reaching
-- before a source's history ("the source keeps 30 days; ... not available"), a part that
-- gives only its current value. A run never loads less than asked without saying so.
ALTER TABLE ingestion_runs ADD COLUMN notes VARCHAR[];
