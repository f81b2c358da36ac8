-- Functions, their versions ($LATEST is version number 0) and their aliases.
CREATE TABLE functions (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0,
    reserved_concurrency INTEGER,
    tags TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (account, region, name)
);

CREATE TABLE versions (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account, region, name, number),
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE
);

CREATE INDEX versions_by_code ON versions (code_sha256);

CREATE TABLE aliases (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    function_version TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    weights TEXT NOT NULL DEFAULT '{}',
    revision_id TEXT NOT NULL,
    PRIMARY KEY (account, region, name, alias),
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE
);
