"""Environments' network. As root: a bridge with NAT to the world, and the host's rules that
keep environments off the host and off each other (host.py, rules.py). Without root, under
user namespaces: a user-mode stack per environment with the rules inside it (user_mode.py)."""
