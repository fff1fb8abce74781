-- Which process runs a run, so a run whose process died without a word (SIGKILL, a power cut)
-- can be told from one still going. Set for the runs one process carries from start to end (a
-- replay: a backtest, a sweep or walk-forward point, `hydra run` in sim); NULL for a trading
-- session (`paper-main`), which every minute's process continues. A run left `running` whose
-- owner is gone is marked `failed`, with the reason, when the next command lists or starts runs.
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE runs ADD COLUMN owner_host VARCHAR;
ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMPTZ;   -- the owner's last sign of life
ALTER TABLE runs ADD COLUMN status_reason VARCHAR;      -- why a run is failed or aborted, when HYDRA knows
