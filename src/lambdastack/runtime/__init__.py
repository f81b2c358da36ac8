"""What runs inside an execution environment: the init (Runtime API server) and the runtimes."""
