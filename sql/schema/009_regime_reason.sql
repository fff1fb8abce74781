-- What a regime reading rests on (the rules and the gauges they had), or why there is none
-- (too few sessions of the reference index): the rules replaced the fitted HMM, so readings
-- carry their reason instead of a model version to look up.
ALTER TABLE regimes ADD COLUMN reason VARCHAR;
