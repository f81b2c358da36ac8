-- Safe deployments: an alias moved from one version to another by a strategy, with the
-- health of both versions compared along the way, and how it ended.
CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    function_name TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    strategy TEXT NOT NULL,
    health_policy TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    weight REAL NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX deployments_by_function ON deployments (account, region, function_name, created);
CREATE INDEX deployments_by_status ON deployments (status);
