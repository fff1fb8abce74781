-- Which of these client order ids any run has recorded.
SELECT DISTINCT client_order_id FROM orders WHERE list_contains($client_order_ids, client_order_id);
