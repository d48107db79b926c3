"""Infrastructure every capability stands on: settings, secrets at rest, safe fetching."""
