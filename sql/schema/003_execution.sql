-- Why an order was placed, as the decision core named it ('stop', 'target', 'event', ... for
-- exits): a restarted run rebuilds its working orders from this table, and an exit's fill
-- closes its trade with this reason. status_reason stays the broker's word on the order.
ALTER TABLE orders ADD COLUMN reason VARCHAR;
