-- Webhook deliveries already accepted, by the marketplace's delivery id (or a hash of the body
-- when the marketplace sends none), so a replayed or duplicated delivery is answered without
-- acting twice. Shared by every instance; rows older than a week are pruned.
CREATE TABLE webhook_deliveries (
    channel      TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (channel, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
