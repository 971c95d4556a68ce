-- Inbound messages, their payloads and their state history.
CREATE TABLE messages (
    message_id          TEXT PRIMARY KEY NOT NULL,
    direction           TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    state               TEXT NOT NULL,
    pmode_id            TEXT NOT NULL,
    from_party          TEXT NOT NULL,
    from_role           TEXT NOT NULL,
    to_party            TEXT NOT NULL,
    to_role             TEXT NOT NULL,
    service             TEXT NOT NULL,
    service_type        TEXT,
    action              TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    agreement           TEXT,
    mpc                 TEXT NOT NULL,
    ref_to_message_id   TEXT,
    message_timestamp   TEXT NOT NULL,
    message_properties  TEXT NOT NULL,          -- JSON array of {name, value, type}
    is_test             INTEGER NOT NULL,       -- ebMS test service: receipted, never delivered
    signer_certificate  TEXT,                   -- SHA-256 hex of the signer's certificate
    envelope            BLOB NOT NULL,          -- the received SOAP envelope (evidence)
    receipt             BLOB NOT NULL,          -- the signed receipt returned (re-sent to duplicates)
    received_at         TEXT NOT NULL
);
CREATE INDEX messages_received_at ON messages (received_at);
CREATE INDEX messages_state ON messages (state);

CREATE TABLE payloads (
    message_id      TEXT NOT NULL REFERENCES messages (message_id),
    position        INTEGER NOT NULL,
    content_id      TEXT NOT NULL,
    blob            TEXT NOT NULL,              -- SHA-256 hex of the stored (decompressed) bytes
    size            INTEGER NOT NULL,
    content         BLOB,                       -- the bytes when small; NULL: in the blob file
    mime_type       TEXT,
    character_set   TEXT,
    compressed      INTEGER NOT NULL,           -- 1 when it arrived gzip-compressed
    properties      TEXT NOT NULL,              -- JSON array of all PartProperties
    PRIMARY KEY (message_id, position)
);

CREATE TABLE state_history (
    message_id  TEXT NOT NULL REFERENCES messages (message_id),
    seq         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    at          TEXT NOT NULL,
    detail      TEXT,
    PRIMARY KEY (message_id, seq)
);
