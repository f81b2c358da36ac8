"""Execution environments' isolation: namespaces, cgroups, seccomp, the zygote.

Everything in lambdastack that needs privilege lives here. Modules in this package run
inside each runtime's own interpreter (CPython 3.9+), so they use the standard library only.
"""
