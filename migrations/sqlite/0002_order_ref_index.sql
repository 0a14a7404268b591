-- Shipping, releasing or returning a bundle line reads the order's ledger rows by order_ref.
CREATE INDEX stock_movements_order ON stock_movements(order_ref);
