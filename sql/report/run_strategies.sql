-- Per strategy of a run: whether it could decide on the run's data (checked as the run started),
-- in how many cycles it decided, and the code it abstained with most often (ties: the first
-- code by name), so a run without orders always says why.
WITH checked AS (
    SELECT strategy, can_run, code, detail FROM run_strategies WHERE run_id = $run_id
),
abstained AS (
    SELECT strategy, code, count(*) AS n FROM strategy_abstentions WHERE run_id = $run_id GROUP BY ALL
),
by_strategy AS (
    SELECT strategy, sum(n)::BIGINT AS cycles_abstained, first(code ORDER BY n DESC, code) AS top_abstention
    FROM abstained
    GROUP BY strategy
),
run AS (
    SELECT count(*) AS cycles FROM cycles WHERE run_id = $run_id
)
SELECT strategy,
       c.can_run,
       c.code,
       c.detail,
       run.cycles - coalesce(a.cycles_abstained, 0) AS cycles_decided,
       coalesce(a.cycles_abstained, 0) AS cycles_abstained,
       a.top_abstention
FROM checked c
FULL JOIN by_strategy a USING (strategy)
CROSS JOIN run
ORDER BY strategy;
