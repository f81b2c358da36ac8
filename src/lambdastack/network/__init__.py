"""Environments' network: a bridge with NAT to the world, and the rules that keep them off the host
and off each other (see host.py and rules.py)."""
