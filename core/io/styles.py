"""QGIS layer styles (`.qml` beside a raster: QGIS loads it as the layer's default style)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..atomic import write_text_atomic


def write_paletted_qml(path: str | Path, entries: list[tuple[int, tuple[int, int, int], str]]) -> None:
    """A paletted (unique values) style for band 1: (value, RGB colour, label) per class."""
    lines = "\n".join(
        f'        <paletteEntry value="{value}" color="#{r:02x}{g:02x}{b:02x}" alpha="255" '
        f"label={quoteattr(label)}/>"
        for value, (r, g, b), label in entries
    )
    write_text_atomic(
        path,
        f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor></minMaxOrigin>
      <colorPalette>
{lines}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
""",
    )
