-- Asynchronous bulk jobs (Amazon JSON_LISTINGS_FEED). A job is recorded when its rows are taken
-- ('building'), again once its document is uploaded ('prepared') and with the marketplace's job id
-- once submitted ('submitted'), so a restart polls that job instead of submitting it again
-- (DESIGN §5), and knows when a submission's fate is unknown.
CREATE TABLE bulk_jobs (
    channel     TEXT NOT NULL,
    id          TEXT NOT NULL,
    state       TEXT NOT NULL,
    draft_json  TEXT,
    job_json    TEXT,
    items_json  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (channel, id)
);

-- The desired version a row's pending bulk job carries (0: none). The dispatcher skips a row
-- while its job carries its current version; a newer version goes out at once by a per-item call.
ALTER TABLE channel_items ADD COLUMN bulk_version BIGINT NOT NULL DEFAULT 0;
