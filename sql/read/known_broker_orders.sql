-- Which of these broker order ids belong to orders some run of HYDRA recorded.
SELECT DISTINCT broker_order_id FROM orders WHERE list_contains($broker_order_ids, broker_order_id);
