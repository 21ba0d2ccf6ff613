"""Training loops (not shipped in the plugin zip)."""
