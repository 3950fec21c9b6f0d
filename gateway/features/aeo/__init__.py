"""AEO mutual recognition: status updates from partner administrations and the lanes they give."""
