-- Where each stream mapping stands in each shard: the sequence number of the last record it
-- is done with (processed, or sent to its on-failure destination). A restart resumes after it.
CREATE TABLE stream_checkpoints (
    uuid TEXT NOT NULL,
    shard TEXT NOT NULL,
    sequence TEXT NOT NULL,
    PRIMARY KEY (uuid, shard),
    FOREIGN KEY (uuid) REFERENCES event_source_mappings (uuid) ON DELETE CASCADE
);
