"""One thin handler per HTTP endpoint."""
