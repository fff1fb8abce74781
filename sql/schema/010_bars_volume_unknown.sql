-- A bar's volume may be unknown: sources such as index levels or close-only daily files have
-- none. NULL means unknown (never zero, which would mean nothing traded); the simulated broker
-- then puts no volume cap on fills at that bar. A volume that is present is still validated.
ALTER TABLE bars ALTER COLUMN volume DROP NOT NULL;
-- (bars.timeframe holds any of core.calendar.Timeframe: 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day.)
