"""Adapters between QGIS layers and core's arrays: raster windows and their pixel frame, building polygons, result
layers (GeoDataFrames and building masks as memory layers).

Everything here runs on the main thread (it reads layers); the copies it returns are what background jobs get.
"""

import os
from dataclasses import dataclass

import geopandas as gpd
import shapely.wkb
from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFillSymbol,
    QgsGeometry,
    QgsLayerTreeGroup,
    QgsMapLayer,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

from ..core.errors import InputError


@dataclass(frozen=True)
class PixelWindow:
    """A block of a raster's pixel grid: offsets and size in pixels."""

    col_off: int
    row_off: int
    width: int
    height: int

    def to_rasterio(self):
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)


def raster_path(layer: QgsRasterLayer) -> str:
    """The file behind a raster layer; core reads files, not QGIS providers."""
    if layer is None or not layer.isValid():
        raise InputError("Choose a valid raster layer first.")
    path = layer.source().split("|")[0]
    if layer.providerType() != "gdal" or not os.path.isfile(path):
        raise InputError(
            f"Layer '{layer.name()}' is not a local raster file (provider {layer.providerType()}): "
            "save it as a GeoTIFF (right-click → Export → Save As…) and use that layer."
        )
    return path


def transform_rectangle(
    rect: QgsRectangle, source_crs: QgsCoordinateReferenceSystem, dest_crs: QgsCoordinateReferenceSystem
) -> QgsRectangle:
    if source_crs == dest_crs:
        return QgsRectangle(rect)
    transform = QgsCoordinateTransform(source_crs, dest_crs, QgsProject.instance())
    return transform.transformBoundingBox(rect)


def extent_window(
    layer: QgsRasterLayer, extent: QgsRectangle, extent_crs: QgsCoordinateReferenceSystem
) -> PixelWindow:
    """The pixels of `layer` covered by `extent` (in `extent_crs`), snapped outward to whole pixels."""
    rect = transform_rectangle(extent, extent_crs, layer.crs()).intersect(layer.extent())
    if rect.isEmpty():
        raise InputError(
            f"The area asked for does not overlap '{layer.name()}': zoom or pan the map onto the layer."
        )
    full = layer.extent()
    pixel_w = full.width() / layer.width()
    pixel_h = full.height() / layer.height()
    col0 = max(0, int((rect.xMinimum() - full.xMinimum()) / pixel_w))
    row0 = max(0, int((full.yMaximum() - rect.yMaximum()) / pixel_h))
    col1 = min(layer.width(), int(-(-(rect.xMaximum() - full.xMinimum()) // pixel_w)))
    row1 = min(layer.height(), int(-(-(full.yMaximum() - rect.yMinimum()) // pixel_h)))
    if col1 <= col0 or row1 <= row0:
        raise InputError(f"The area asked for is smaller than one pixel of '{layer.name()}': zoom out.")
    return PixelWindow(col0, row0, col1 - col0, row1 - row0)


class PixelFrame:
    """Map coordinates (the layer's CRS) ↔ (row, col) of a window of a raster layer (pixel centres at .5)."""

    def __init__(self, layer: QgsRasterLayer, window: PixelWindow):
        full = layer.extent()
        self.pixel_w = full.width() / layer.width()
        self.pixel_h = full.height() / layer.height()
        self.left = full.xMinimum() + window.col_off * self.pixel_w
        self.top = full.yMaximum() - window.row_off * self.pixel_h

    def row_col(self, point) -> tuple[float, float]:
        return ((self.top - point.y()) / self.pixel_h - 0.5, (point.x() - self.left) / self.pixel_w - 0.5)

    def map_point(self, row_col) -> QgsPointXY:
        row, col = row_col
        return QgsPointXY(self.left + (col + 0.5) * self.pixel_w, self.top - (row + 0.5) * self.pixel_h)

    def vertices(self, geometry: QgsGeometry) -> tuple:
        """The (row, col) vertices of a polygon's outer ring (the first part of a multipolygon)."""
        ring = geometry.asPolygon()[0] if not geometry.isMultipart() else geometry.asMultiPolygon()[0][0]
        return tuple(self.row_col(point) for point in ring)


def window_extent(layer: QgsRasterLayer, window: PixelWindow) -> QgsRectangle:
    """The window's footprint in the layer's CRS."""
    full = layer.extent()
    pixel_w = full.width() / layer.width()
    pixel_h = full.height() / layer.height()
    return QgsRectangle(
        full.xMinimum() + window.col_off * pixel_w,
        full.yMaximum() - (window.row_off + window.height) * pixel_h,
        full.xMinimum() + (window.col_off + window.width) * pixel_w,
        full.yMaximum() - window.row_off * pixel_h,
    )


def clamp_window(window: PixelWindow, layer: QgsRasterLayer, max_side: int) -> PixelWindow:
    """Shrink a window about its centre so no side exceeds `max_side` pixels (kept inside the layer)."""
    width, height = min(window.width, max_side), min(window.height, max_side)
    centre_col = window.col_off + window.width // 2
    centre_row = window.row_off + window.height // 2
    col0 = min(max(0, centre_col - width // 2), layer.width() - width)
    row0 = min(max(0, centre_row - height // 2), layer.height() - height)
    return PixelWindow(col0, row0, width, height)


def buildings_frame(
    layer: QgsVectorLayer,
    dest_crs: QgsCoordinateReferenceSystem,
    within: QgsRectangle | None = None,
) -> gpd.GeoDataFrame:
    """Polygons of `layer` (column `fid` = QGIS feature id) transformed into `dest_crs`, optionally only those
    meeting `within` (a rectangle in `dest_crs`).

    The frame carries no CRS object on purpose: pyproj objects must not cross threads (a CRS made here and used
    in a QgsTask crashes PROJ), and the coordinates are already in `dest_crs`."""
    if layer is None or not layer.isValid() or layer.geometryType() != QgsWkbTypes.PolygonGeometry:
        raise InputError("Choose a polygon layer of buildings (or a classified building mask raster).")
    transform = QgsCoordinateTransform(layer.crs(), dest_crs, QgsProject.instance())
    request = QgsFeatureRequest()
    if within is not None:
        request.setFilterRect(transform_rectangle(within, dest_crs, layer.crs()))
    request.setNoAttributes()
    fids, shapes = [], []
    for feature in layer.getFeatures(request):
        geometry = feature.geometry()
        if geometry is None or geometry.isEmpty():
            continue
        if layer.crs() != dest_crs:
            geometry.transform(transform)
        fids.append(feature.id())
        shapes.append(shapely.wkb.loads(bytes(geometry.asWkb())))
    return gpd.GeoDataFrame({"fid": fids}, geometry=shapes)


def _memory_polygons(frame, name: str, crs: QgsCoordinateReferenceSystem, fields: dict) -> QgsVectorLayer:
    """A memory layer of a GeoDataFrame's polygons with the columns `fields` ({column: (QVariant type, cast)})."""
    layer = QgsVectorLayer("MultiPolygon", name, "memory")
    layer.setCrs(crs)
    provider = layer.dataProvider()
    provider.addAttributes([QgsField(column, kind) for column, (kind, _) in fields.items()])
    layer.updateFields()
    features = []
    for record in frame.itertuples():
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(record.geometry.wkt))
        feature.setAttributes([cast(getattr(record, column)) for column, (_, cast) in fields.items()])
        features.append(feature)
    provider.addFeatures(features)
    layer.updateExtents()
    return layer


def change_polygons_layer(frame, crs_wkt: str, name: str) -> QgsVectorLayer:
    """A memory layer of `core.synthesis.edits.change_polygons` (attributes: event_type, step, area_m2)."""
    fields = {
        "event_type": (QVariant.String, str),
        "step": (QVariant.Int, int),
        "area_m2": (QVariant.Double, float),
    }
    return _memory_polygons(frame, name, QgsCoordinateReferenceSystem.fromWkt(crs_wkt), fields)


LABEL_DATA_TYPES = (Qgis.Byte, Qgis.UInt16, Qgis.Int16, Qgis.UInt32, Qgis.Int32)


def is_label_raster(layer: QgsMapLayer) -> bool:
    """A raster that can hold building masks or labels: one band of integers (not an RGB or a float image)."""
    return (
        isinstance(layer, QgsRasterLayer)
        and layer.isValid()
        and layer.bandCount() == 1
        and layer.dataProvider().dataType(1) in LABEL_DATA_TYPES
    )


def mask_buildings_layer(polygons, mask_layer: QgsRasterLayer) -> QgsVectorLayer:
    """The building polygons vectorised from `mask_layer` (`synthesis_jobs.MaskPolygons`) as a styled layer."""
    layer = QgsVectorLayer(
        f"{polygons.path}|layername=buildings", f"buildings from {mask_layer.name()}", "ogr"
    )
    style_outline(layer, "255,200,0,255", 0.4)
    return layer


def reprojection_note(source: QgsMapLayer, target: QgsMapLayer) -> str:
    """A sentence saying what was done to bring `source` onto `target`'s CRS (empty when nothing was needed)."""
    if source.crs() == target.crs():
        return ""
    return (
        f"'{source.name()}' ({source.crs().authid() or 'custom CRS'}) was reprojected to the CRS of "
        f"'{target.name()}' ({target.crs().authid() or 'custom CRS'}) on the fly."
    )


def result_group(name: str, above: QgsMapLayer | None = None) -> QgsLayerTreeGroup:
    """A fresh layer-tree group, inserted above `above` when given (else at the top)."""
    root = QgsProject.instance().layerTreeRoot()
    index = 0
    if above is not None:
        node = root.findLayer(above.id())
        if node is not None and node.parent() is root:
            index = root.children().index(node)
    return root.insertGroup(index, name)


def add_layer(layer: QgsMapLayer, group: QgsLayerTreeGroup | None = None, above: QgsMapLayer | None = None):
    """Add to the project, into `group` or just above `above` (else at the top of the legend)."""
    if not layer.isValid():
        raise InputError(f"QGIS could not open the result '{layer.source()}'; see the Changen log.")
    project = QgsProject.instance()
    project.addMapLayer(layer, False)
    if group is not None:
        group.addLayer(layer).setExpanded(False)
        return layer
    root = project.layerTreeRoot()
    parent, index = root, 0
    if above is not None:
        node = root.findLayer(above.id())
        if node is not None:
            parent = node.parent()
            index = parent.children().index(node)
    parent.insertLayer(index, layer).setExpanded(False)
    return layer


TEMPORARY_PROPERTY = "changen/temporary"


def temporary_name(name: str) -> str:
    return f"{name} (temporary)"


def add_temporary_layer(
    layer: QgsMapLayer, above: QgsMapLayer | None = None, group: QgsLayerTreeGroup | None = None
):
    """Add a layer whose data lives in the system's temporary folder and is removed when Changen unloads: its name
    says "(temporary)" and it carries the custom property `TEMPORARY_PROPERTY`, so a saved project shows what
    will not last."""
    layer.setName(temporary_name(layer.name()))
    layer.setCustomProperty(TEMPORARY_PROPERTY, True)
    return add_layer(layer, group=group, above=above)


def add_export_layers(export, name: str) -> QgsLayerTreeGroup:
    """An exported pair (`synthesis_jobs.ExportResult`) in a new group: change polygons, then change masks, images
    and building masks from the last step down, the last step's change and image shown."""
    group = result_group(name)
    polygons = QgsVectorLayer(export.polygons_path, "change polygons", "ogr")
    style_outline(polygons, "255,0,255,255")
    add_layer(polygons, group=group)
    last = len(export.images) - 1
    for t in range(last, 0, -1):
        change = add_layer(QgsRasterLayer(export.changes[t - 1], f"change t{t - 1}→t{t}"), group=group)
        style_probability(change)
        group.findLayer(change.id()).setItemVisibilityChecked(t == last)
    for t in range(last, -1, -1):
        image = add_layer(QgsRasterLayer(export.images[t], f"image t{t}"), group=group)
        group.findLayer(image.id()).setItemVisibilityChecked(t == last)
    for t in range(last, -1, -1):
        mask = add_layer(QgsRasterLayer(export.masks[t], f"building mask t{t}"), group=group)
        group.findLayer(mask.id()).setItemVisibilityChecked(False)
    return group


def remove_layers(layer_ids) -> None:
    project = QgsProject.instance()
    project.removeMapLayers([layer_id for layer_id in layer_ids if project.mapLayer(layer_id) is not None])


def style_probability(layer: QgsRasterLayer) -> None:
    """Transparent at 0, yellow to red towards 1."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(0.0, QColor(255, 255, 178, 0), "0"),
            QgsColorRampShader.ColorRampItem(0.5, QColor(254, 178, 76, 160), "0.5"),
            QgsColorRampShader.ColorRampItem(1.0, QColor(189, 0, 38, 230), "1"),
        ]
    )
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_outline(layer: QgsVectorLayer, color: str, width_mm: float = 0.6) -> None:
    symbol = QgsFillSymbol.createSimple(
        {"color": "0,0,0,0", "outline_color": color, "outline_width": str(width_mm), "style": "no"}
    )
    layer.renderer().setSymbol(symbol)
    layer.triggerRepaint()


def style_from_qml(layer: QgsMapLayer) -> None:
    """Apply the QGIS style core wrote beside the layer's file (`name.qml`, e.g. class names of a class map)."""
    style = os.path.splitext(layer.source().split("|")[0])[0] + ".qml"
    if os.path.isfile(style):
        layer.loadNamedStyle(style)
        layer.triggerRepaint()
