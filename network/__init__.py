"""Composition root: consortium spec, crypto material, local network launcher and CLI."""
