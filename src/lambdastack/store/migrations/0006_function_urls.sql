-- Function URLs: one per function (qualifier '') or alias. The URL id is what a request's
-- Host names. A URL goes with its function, and with its alias.
CREATE TABLE function_urls (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    alias TEXT,
    url_id TEXT NOT NULL UNIQUE,
    auth_type TEXT NOT NULL,
    invoke_mode TEXT NOT NULL,
    cors TEXT,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    PRIMARY KEY (account, region, name, qualifier),
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE,
    FOREIGN KEY (account, region, name, alias) REFERENCES aliases (account, region, name, alias) ON DELETE CASCADE
);
