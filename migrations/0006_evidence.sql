-- Evidence in a table of its own: the SOAP envelope received (inbound) or sent and
-- acknowledged or handed to a puller (outbound), and the signed receipt returned (inbound,
-- re-sent to duplicates) or received (outbound). A message's row changes state several
-- times during delivery or sending; with the evidence (some 10 KB per message, in overflow
-- pages) in that row, each change rewrote it. An outbound message has no evidence row until
-- an attempt is acknowledged or a copy is pulled.
CREATE TABLE message_evidence (
    message_id  TEXT PRIMARY KEY NOT NULL REFERENCES messages (message_id),
    envelope    BLOB NOT NULL,
    receipt     BLOB NOT NULL
);
INSERT INTO message_evidence (message_id, envelope, receipt)
    SELECT message_id, envelope, receipt FROM messages
    WHERE length(envelope) > 0 OR length(receipt) > 0;
ALTER TABLE messages DROP COLUMN envelope;
ALTER TABLE messages DROP COLUMN receipt;
