-- Delivery of inbound messages to back-end subscriptions (src/delivery/worker.rs), the
-- operator controls that pause it, and the audit trail of operator actions.

-- One row per (message, subscription): the subscription's own delivery position. Inserted in
-- the transaction that stores the message, together with its work item (queue_items).
-- A message no subscription accepted gets one row with subscription '*' in state 'dead',
-- reason 'no_route'.
CREATE TABLE deliveries (
    message_id      TEXT NOT NULL REFERENCES messages (message_id),
    subscription    TEXT NOT NULL,
    queue           TEXT NOT NULL,                  -- the delivery queue it was routed through
    state           TEXT NOT NULL
                    CHECK (state IN ('pending', 'held', 'delivered', 'dead', 'discarded')),
    attempts        INTEGER NOT NULL DEFAULT 0,     -- attempts made (since the last replay)
    last_error      TEXT,
    reason          TEXT                            -- why dead-lettered
                    CHECK (reason IS NULL OR reason IN
                           ('retries_exhausted', 'expired', 'no_route', 'permanent_error')),
    replays         INTEGER NOT NULL DEFAULT 0,
    enqueued_at     TEXT NOT NULL,                  -- RFC 3339, routed (or last replayed)
    expires_at      INTEGER NOT NULL,               -- Unix ms: queue TTL runs out
    updated_at      TEXT NOT NULL,                  -- RFC 3339, last change
    PRIMARY KEY (message_id, subscription)
);
CREATE INDEX deliveries_state ON deliveries (state, queue, subscription);

-- Paused delivery queues and disabled subscriptions (absent: running).
CREATE TABLE delivery_pauses (
    kind        TEXT NOT NULL CHECK (kind IN ('queue', 'subscription')),
    name        TEXT NOT NULL,
    since       TEXT NOT NULL,                      -- RFC 3339
    PRIMARY KEY (kind, name)
);

-- Every operator action: who, when, what, on what, with what result.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,                          -- RFC 3339
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
);
