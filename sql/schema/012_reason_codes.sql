-- Reasons get a stable code with their variable part kept apart, so they group: a reason's text
-- embeds ages and times ("input funding_rates stale: newest row is 9:12:00 old ..."), and
-- GROUP BY reason made one group per cycle. The codes are core.types.ReasonCode, listed with
-- their meaning in the README ("Reason codes"). The text columns stay as they were: old rows
-- keep their words, new rows hold "code: detail".

ALTER TABLE strategy_abstentions ADD COLUMN code VARCHAR;
ALTER TABLE strategy_abstentions ADD COLUMN detail VARCHAR;

-- Abstentions recorded before: each code from the words its reason was made with
-- (core/strategy.py, core/pipeline.py, the strategies), the detail from what varied in them.
UPDATE strategy_abstentions
SET code = CASE
        WHEN reason = 'disabled in configuration' THEN 'disabled'
        WHEN reason LIKE 'needs % bars or finer; the cycle decides on %' THEN 'timeframe_too_coarse'
        WHEN reason LIKE 'input bars has no %' THEN 'symbol_missing'
        WHEN reason LIKE 'no funding, open interest or closed bars for %' THEN 'symbol_missing'
        WHEN reason LIKE 'input bars does not reach back %' THEN 'history_short'
        WHEN regexp_matches(reason, '^input \S+ missing$') THEN 'input_missing'
        WHEN regexp_matches(reason, '^input \S+ stale: ') THEN 'input_stale'
        WHEN reason LIKE 'error: %' THEN 'error'
    END,
    detail = CASE
        WHEN reason = 'disabled in configuration' THEN 'in configuration'
        WHEN regexp_matches(reason, '^input \S+ missing$') THEN regexp_extract(reason, '^input (\S+) missing$', 1)
        WHEN regexp_matches(reason, '^input \S+ stale: ') THEN regexp_replace(reason, '^input (\S+) stale: ', '\1: ')
        WHEN reason LIKE 'error: %' THEN reason[8:]
        ELSE reason
    END
WHERE code IS NULL;

-- Per decision, the code of each reason and its detail (NULL where it has none), in the order of
-- `reasons`: unnest(reason_codes) groups rejections by limit.
ALTER TABLE risk_decisions ADD COLUMN reason_codes VARCHAR[];
ALTER TABLE risk_decisions ADD COLUMN reason_details VARCHAR[];

-- Decisions recorded before: every risk reason began with its code ("kill_switch: HALTED ...",
-- "cooldown until ...", "max_position"); what followed it is the detail.
UPDATE risk_decisions
SET reason_codes = list_transform(reasons, lambda r: regexp_extract(r, '^[a-z_]+')),
    reason_details = list_transform(reasons, lambda r: nullif(regexp_replace(r, '^[a-z_]+:? ?', ''), ''))
WHERE reason_codes IS NULL;

-- One count per reason code of each rejected proposal: a rejection citing two limits counts for
-- both, so the counts add up to more than the rejections.
CREATE OR REPLACE VIEW analytics_risk_rejections AS
SELECT run_id, code, count(*) AS rejections
FROM (SELECT run_id, unnest(reason_codes) AS code FROM risk_decisions WHERE NOT approved)
GROUP BY ALL;

-- Whether each strategy could decide on the data of a run's window, checked as the run starts
-- (core.strategy.availability): NULL code when it can, else why not. For one that can, detail
-- names the symbols it would read that have no bars.
CREATE TABLE run_strategies (
    run_id      VARCHAR     NOT NULL,
    strategy    VARCHAR     NOT NULL,
    can_run     BOOLEAN     NOT NULL,
    code        VARCHAR,
    detail      VARCHAR,
    ts_ingested TIMESTAMPTZ NOT NULL,   -- when it was checked
    PRIMARY KEY (run_id, strategy)
);
