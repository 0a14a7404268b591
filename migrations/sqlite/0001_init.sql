-- omnistock schema (SQLite). Kept column-for-column identical to migrations/postgres/0001_init.sql:
-- every query in src/store runs unchanged on both. Times are unix milliseconds (BIGINT), money is
-- integer minor units, JSON is TEXT.

CREATE TABLE products (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    brand           TEXT NOT NULL DEFAULT '',
    attributes_json TEXT NOT NULL DEFAULT '{}',
    updated_at      BIGINT NOT NULL
);

CREATE TABLE variants (
    sku             TEXT PRIMARY KEY,
    product_id      TEXT NOT NULL REFERENCES products(id),
    title           TEXT NOT NULL,
    price_minor     BIGINT NOT NULL CHECK (price_minor >= 0),
    currency        TEXT NOT NULL,
    barcode         TEXT,
    weight_g        BIGINT,
    options_json    TEXT NOT NULL DEFAULT '[]',
    tags_json       TEXT NOT NULL DEFAULT '[]',
    image_urls_json TEXT NOT NULL DEFAULT '[]',
    attributes_json TEXT NOT NULL DEFAULT '{}',
    is_bundle       BIGINT NOT NULL DEFAULT 0,
    content_hash    TEXT NOT NULL DEFAULT '',
    updated_at      BIGINT NOT NULL
);
CREATE INDEX variants_product ON variants(product_id);

CREATE TABLE bundles (
    bundle_sku    TEXT NOT NULL REFERENCES variants(sku),
    component_sku TEXT NOT NULL REFERENCES variants(sku),
    qty           BIGINT NOT NULL CHECK (qty > 0),
    PRIMARY KEY (bundle_sku, component_sku)
);
CREATE INDEX bundles_component ON bundles(component_sku);

CREATE TABLE locations (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE stock_levels (
    sku      TEXT NOT NULL REFERENCES variants(sku),
    location TEXT NOT NULL REFERENCES locations(id),
    on_hand  BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    version  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sku, location)
);

CREATE TABLE stock_movements (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sku             TEXT NOT NULL,
    location        TEXT NOT NULL,
    delta_on_hand   BIGINT NOT NULL,
    delta_reserved  BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    order_ref       TEXT,
    at              BIGINT NOT NULL
);
CREATE INDEX stock_movements_sku ON stock_movements(sku, location);

CREATE TABLE orders (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    channel           TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    status            TEXT NOT NULL,
    placed_at         BIGINT NOT NULL,
    remote_updated_at BIGINT NOT NULL,
    total_minor       BIGINT,
    currency          TEXT,
    buyer_ref         TEXT,
    fulfilled_by_channel BIGINT NOT NULL DEFAULT 0,
    ingested_at       BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX orders_placed ON orders(placed_at);

CREATE TABLE order_lines (
    order_id    BIGINT NOT NULL REFERENCES orders(id),
    line_id     TEXT NOT NULL,
    sku         TEXT NOT NULL,
    qty         BIGINT NOT NULL CHECK (qty > 0),
    unit_price_minor BIGINT,
    -- open: reserving stock; shipped; released (cancelled); returned; oversold: could not reserve;
    -- unknown_sku: the SKU is not in the catalog; external: fulfilled by the channel (FBA).
    state       TEXT NOT NULL,
    reserved_qty BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_id)
);
CREATE INDEX order_lines_sku ON order_lines(sku);

CREATE TABLE channel_items (
    channel           TEXT NOT NULL,
    sku               TEXT NOT NULL,
    external_id       TEXT,
    desired_json      TEXT NOT NULL,
    desired_qty       BIGINT NOT NULL,
    desired_price_minor BIGINT NOT NULL,
    desired_version   BIGINT NOT NULL,
    pushed_version    BIGINT NOT NULL DEFAULT 0,
    pushed_json       TEXT,
    pushed_qty        BIGINT,
    remote_seen_json  TEXT,
    state             TEXT NOT NULL DEFAULT 'active',
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL DEFAULT 0,
    last_error        TEXT,
    last_pushed_at    BIGINT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (channel, sku)
);
CREATE INDEX channel_items_dirty ON channel_items(channel, next_attempt_at) WHERE desired_version > pushed_version;

CREATE TABLE channel_cursors (
    channel TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (channel, kind)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE cron_ticks (
    name      TEXT PRIMARY KEY,
    last_tick BIGINT NOT NULL
);

CREATE TABLE sync_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    sku     TEXT,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX sync_events_channel ON sync_events(channel, at);
CREATE INDEX sync_events_sku ON sync_events(sku, at);
