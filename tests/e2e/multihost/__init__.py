"""The multi-host acceptance test: its consortium template, deployment steps and story."""
