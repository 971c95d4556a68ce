-- Pull (src/outbound/pull.rs): the signature references of the last copy handed out to a
-- puller, to check the receipt it sends back later against (JSON array of
-- {uri, digest_method, digest_value}).
ALTER TABLE sends ADD COLUMN sent_references TEXT;
