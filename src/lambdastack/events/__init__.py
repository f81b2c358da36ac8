"""What turns the world's events into invocations: Function URLs (and, later, HTTP APIs,
queues, schedules and uploads), each in a package of its own."""
