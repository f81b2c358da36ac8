"""lambdastack's built-in Python runtime: a Lambda Runtime API client that behaves like awslambdaric.

Importing this package (or any module in it) has no side effects; an environment starts the
runtime with `bootstrap.main()`, and a zygote calls `bootstrap.preload()` before it forks.
"""
