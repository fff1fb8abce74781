-- Whether the same alert was raised since $since (so it is not sent again so soon).
SELECT count(*) FROM alerts WHERE kind = $kind AND subject = $subject AND ts_event >= $since;
