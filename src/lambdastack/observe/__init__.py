"""Observability: function logs, metrics, traces and billing records."""
