"""Recall of intelligence: withdraw the copies a recall reaches."""
