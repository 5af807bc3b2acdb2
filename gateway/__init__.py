"""The gateway service and the Python client applications use to reach it."""
