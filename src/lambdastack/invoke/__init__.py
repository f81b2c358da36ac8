"""Invocation: qualifier → version, admission, the synchronous path and the asynchronous queue."""
