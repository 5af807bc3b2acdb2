"""The ordering service: accepts transactions, cuts blocks and replicates them."""
