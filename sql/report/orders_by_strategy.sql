SELECT strategy,
       count(*) AS orders,
       count(*) FILTER (WHERE intent = 'entry') AS entries,
       count(*) FILTER (WHERE intent = 'exit') AS exits,
       count(*) FILTER (WHERE status = 'filled') AS filled,
       count(*) FILTER (WHERE status = 'refused') AS refused
FROM orders
WHERE run_id = $run_id
GROUP BY strategy
ORDER BY strategy;
