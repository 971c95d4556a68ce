-- Sending (src/outbound): submissions and the send state of outbound messages. The message
-- itself, its payloads and its history live in messages / payloads / state_history with
-- direction 'outbound'; its envelope and receipt columns are filled once a receipt arrives.

-- Idempotent submission: a submission id seen before returns the message it created.
CREATE TABLE submissions (
    submission_id   TEXT PRIMARY KEY NOT NULL,
    message_id      TEXT NOT NULL REFERENCES messages (message_id),
    submitted_at    TEXT NOT NULL
);

-- One row per outbound message: who it goes to and how sending went.
CREATE TABLE sends (
    message_id      TEXT PRIMARY KEY NOT NULL REFERENCES messages (message_id),
    partner         TEXT NOT NULL,                  -- responder PartyId
    attempts        INTEGER NOT NULL DEFAULT 0,     -- attempts started
    error_code      TEXT,                           -- ebMS code for the submitter (EBMS:0301 ...)
    last_error      TEXT,
    updated_at      TEXT NOT NULL
);
