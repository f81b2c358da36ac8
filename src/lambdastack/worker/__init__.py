"""Workers: pools of execution environments per function version, and their lifecycle."""
