-- EventBridge rules on the default bus, their targets, and when each scheduled rule last fired
-- (the scheduled time, so that a restart neither fires a time twice nor skips one).
CREATE TABLE rules (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created REAL NOT NULL,
    last_fired REAL,
    PRIMARY KEY (account, region, name)
);

CREATE TABLE rule_targets (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    rule TEXT NOT NULL,
    target_id TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (account, region, rule, target_id),
    FOREIGN KEY (account, region, rule) REFERENCES rules (account, region, name) ON DELETE CASCADE
);
