"""Demos and sample payloads; never imported by the product."""
