"""Test helpers that start and fault real external processes (etcd, ...)."""
