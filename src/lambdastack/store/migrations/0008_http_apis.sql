-- HTTP APIs (API Gateway v2): each API, and its parts (integrations, routes, stages), kept as
-- the documents the apigatewayv2 API shows. A part goes with its API.
CREATE TABLE http_apis (
    api_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    document TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX http_apis_by_owner ON http_apis (account, region, created);

CREATE TABLE http_api_parts (
    api_id TEXT NOT NULL REFERENCES http_apis (api_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    part_id TEXT NOT NULL,
    document TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (api_id, kind, part_id)
);
