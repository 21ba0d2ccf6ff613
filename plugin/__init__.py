"""QGIS adapters: they turn layers into arrays for `core` and its results back into layers."""
