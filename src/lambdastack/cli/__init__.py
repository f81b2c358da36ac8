"""The `lambdastack` command."""
