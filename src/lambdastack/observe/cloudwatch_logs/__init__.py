"""CloudWatch Logs at lambdastack's endpoint: log groups and streams over the stored function logs."""
