"""The HTTP API: Lambda's REST API (2015-03-31 wire format) and lambdastack's own `/_lambdastack/` routes."""
