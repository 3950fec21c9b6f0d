"""What the exchange needs from the outside, as Protocols and typed values (implemented in gateway.infra)."""
