-- Provisioned concurrency: how many environments to keep initialized for a version or alias.
CREATE TABLE provisioned_concurrency (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    requested INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (account, region, function_name, qualifier),
    FOREIGN KEY (account, region, function_name) REFERENCES functions (account, region, name) ON DELETE CASCADE
);
