-- Resource-based policies of functions: one per qualifier ('' for the function itself, a
-- version or an alias), as the statements AddPermission wrote. Dropped with the function,
-- and with the alias a policy belongs to.
CREATE TABLE function_policies (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    alias TEXT,
    statements TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (account, region, name, qualifier),
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE,
    FOREIGN KEY (account, region, name, alias) REFERENCES aliases (account, region, name, alias) ON DELETE CASCADE
);
