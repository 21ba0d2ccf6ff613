"""Change detection: ChangeStar models, loading, tiled inference, classical references and metrics."""
