"""Changen core: change-event simulation, change synthesis and change detection on arrays and rasters.

Pure Python + numpy/torch/rasterio; never imports qgis, so it runs from the command line
(`python -m core …`), in tests and inside QGIS alike.
"""
