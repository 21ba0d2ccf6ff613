"""Training the Changen generator."""
