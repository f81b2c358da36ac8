"""The control plane: functions, versions, aliases, tags, concurrency settings and code.

Services here are synchronous and run on one thread; they read and write through the
store's transactions and announce committed changes through `events`.
"""
