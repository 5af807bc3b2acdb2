"""Fault-injection tests of the ordering service: real etcd processes, killed and paused."""
