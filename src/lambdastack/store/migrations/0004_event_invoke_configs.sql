-- Asynchronous invocation settings per function qualifier ($LATEST, a version or an alias).
CREATE TABLE event_invoke_configs (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (account, region, name, qualifier),
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE
);
