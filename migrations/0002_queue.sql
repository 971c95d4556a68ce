-- The queue layer (src/queue). With the embedded backend `queue_items` IS the work queue;
-- with RabbitMQ it is the outbox the relay publishes from and deletes after each confirm.
CREATE TABLE queue_items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order
    message_id      TEXT NOT NULL,
    subscriber      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,                   -- tries made before this one
    enqueued_at     TEXT NOT NULL,                      -- RFC 3339, first enqueue
    available_at    INTEGER NOT NULL,                   -- Unix ms: not handed out before
    lease_until     INTEGER,                            -- Unix ms: leased until; NULL: free
    lease_token     TEXT,                               -- the current lease; stale settles miss
    deliveries      INTEGER NOT NULL DEFAULT 0,         -- claims since last (re)scheduled
    UNIQUE (message_id, subscriber)
);
CREATE INDEX queue_items_due ON queue_items (available_at, id);

-- Items given up, with the reason, kept for operators.
CREATE TABLE queue_dead_letters (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id          TEXT NOT NULL,
    subscriber          TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    enqueued_at         TEXT NOT NULL,
    reason              TEXT NOT NULL,
    dead_lettered_at    TEXT NOT NULL                   -- RFC 3339
);
