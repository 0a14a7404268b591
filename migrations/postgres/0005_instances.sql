-- Daemons sharing this database. Each running daemon heartbeats its row; the engine spreads
-- channel leases over the instances whose heartbeat is fresher than a lease lifetime. Rows of
-- instances that stopped cleanly are deleted; rows of dead ones age out and are pruned.
CREATE TABLE instances (
    owner        TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- "Poll this channel's orders now": a webhook that reached an instance which does not own the
-- channel leaves the hint here for the owner, which looks every half second.
CREATE TABLE poll_requests (
    channel      TEXT PRIMARY KEY,
    requested_at BIGINT NOT NULL
);
