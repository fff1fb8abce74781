-- An order refused (by HYDRA's check of a broker rule before sending, or by the broker) keeps
-- its words in status_reason; refusal_code is the stable code of adapters.broker.OrderRefused,
-- so refusals group by cause, and refusal_kind says whether the cause lasts ('permanent': the
-- view is not proposed again) or may pass ('transient'). Rows recorded before have NULLs.
ALTER TABLE orders ADD COLUMN refusal_code VARCHAR;
ALTER TABLE orders ADD COLUMN refusal_kind VARCHAR;

-- One row per run, refusal code, strategy and symbol: how many orders were refused, the first
-- and the last time.
CREATE OR REPLACE VIEW analytics_broker_refusals AS
SELECT run_id, refusal_code AS code, refusal_kind AS kind, strategy, symbol,
       count(*) AS refusals, min(ts_event) AS first_at, max(ts_event) AS last_at
FROM orders
WHERE status = 'refused'
GROUP BY ALL;
