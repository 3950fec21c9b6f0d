"""The submit path every adapter feeds: pipeline, stages, inbox, access, refusal recording."""
