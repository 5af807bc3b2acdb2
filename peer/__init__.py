"""The peer: endorses proposals, validates and commits blocks, serves Deliver."""
