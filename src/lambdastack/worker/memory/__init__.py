"""Memory admission: how many environments the host holds, decided by what they really use."""
