"""Wire adapters: translators between a transport and the one pipeline. They hold no business rules."""
