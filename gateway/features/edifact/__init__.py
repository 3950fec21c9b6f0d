"""EDIFACT CUSCAR in, CUSRES answers out."""
