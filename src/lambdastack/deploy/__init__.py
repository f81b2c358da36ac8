"""Safe deployments: move an alias to a new version step by step, watch both versions'
health, and roll the alias back by itself when the new version does worse."""
