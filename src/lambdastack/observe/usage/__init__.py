"""The usage ledger: what each function version used, per hour, kept on disk."""
