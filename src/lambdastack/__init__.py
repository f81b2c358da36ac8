"""lambdastack: a self-hosted serverless compute platform that behaves like AWS Lambda.

This module must stay importable by every CPython runtime (3.9+) without dependencies:
the sandbox and runtime subpackages are loaded by each runtime's zygote.
"""

__version__ = "0.1.0"
