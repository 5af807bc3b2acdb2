"""The multi-host acceptance test: its consortium template and deployment steps."""
