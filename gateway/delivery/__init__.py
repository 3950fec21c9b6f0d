"""Push delivery to members' endpoints, retries and dead letters."""
