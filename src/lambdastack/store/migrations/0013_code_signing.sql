-- Code signing configurations, and which one each function has (at most one). A function's
-- link goes with the function; a configuration some function uses cannot be deleted.
CREATE TABLE code_signing_configs (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    publishers TEXT NOT NULL,
    policy TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (account, region, id)
);

CREATE TABLE function_code_signing (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    config_id TEXT NOT NULL,
    PRIMARY KEY (account, region, name),
    FOREIGN KEY (account, region, name) REFERENCES functions (account, region, name) ON DELETE CASCADE,
    FOREIGN KEY (account, region, config_id) REFERENCES code_signing_configs (account, region, id)
);

CREATE INDEX function_code_signing_by_config ON function_code_signing (account, region, config_id, name);
