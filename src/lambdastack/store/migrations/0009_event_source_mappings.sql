-- Event source mappings: what a poller reads (`document`, as GetEventSourceMapping shows it,
-- less the poller's live figures) and which function it invokes. A mapping goes with its function.
CREATE TABLE event_source_mappings (
    uuid TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created TEXT NOT NULL,
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE
);
CREATE INDEX event_source_mappings_by_function ON event_source_mappings (account, region, name);
