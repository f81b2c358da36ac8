"""Who is calling: the credentials the platform gives each function."""
