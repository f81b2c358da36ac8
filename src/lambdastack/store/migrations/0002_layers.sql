-- Layers: one row per layer name keeps its highest version number ever published (numbers
-- are never reused), one row per layer version keeps its content and its resource policy.
CREATE TABLE layers (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, region, name)
);

CREATE TABLE layer_versions (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    compatible_runtimes TEXT NOT NULL DEFAULT '[]',
    compatible_architectures TEXT NOT NULL DEFAULT '[]',
    license_info TEXT,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    unzipped_size INTEGER NOT NULL,
    policy TEXT NOT NULL DEFAULT '[]',
    policy_revision TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account, region, name, version),
    FOREIGN KEY (account, region, name) REFERENCES layers (account, region, name)
);

CREATE INDEX layer_versions_by_code ON layer_versions (code_sha256);
