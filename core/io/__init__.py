"""Files in and out: rasters, tiling, vectors, label and instance reading, event-series writing."""
