-- EventBridge Scheduler schedules (group `default`), as GetSchedule shows them, and when each
-- last fired (the scheduled time, so that a restart neither fires a time twice nor skips one).
CREATE TABLE schedules (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created REAL NOT NULL,
    last_fired REAL,
    PRIMARY KEY (account, region, name)
);
