"""Change detection: ChangeStar models, loading, tiled inference, classical references and metrics.

The tiling defaults live here, without torch, for the command line's parser and the plugin's settings."""

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64
