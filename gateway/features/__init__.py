"""Domain features; each registers its handlers with the exchange, and no feature imports another."""
