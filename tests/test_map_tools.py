"""Map tools on real Joplin footprints over a real pre-event chip (different CRSs: CRS84 vs UTM 15N)."""

import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt

from changen.plugin.map_tools import CreateBuildingTool, EditOverlay, EditSession, RemoveBuildingTool


@pytest.fixture(params=["image CRS", "EPSG:3857"])
def joplin_layers(request, shared_data, qgis_canvas, qgis_new_project):
    """The chip and the footprints, on a canvas in the image's CRS or in Web Mercator (a third CRS)."""
    raster = QgsRasterLayer(str(shared_data / "georef/joplin/chips/pre/0_pre.tif"), "pre")
    buildings = QgsVectorLayer(
        str(shared_data / "georef/joplin/footprints_2020.geojson"), "footprints", "ogr"
    )
    assert raster.isValid() and buildings.isValid()
    QgsProject.instance().addMapLayers([raster, buildings])
    canvas_crs = raster.crs() if request.param == "image CRS" else QgsCoordinateReferenceSystem(request.param)
    qgis_canvas.setDestinationCrs(canvas_crs)
    qgis_canvas.setLayers([buildings, raster])
    to_canvas = QgsCoordinateTransform(raster.crs(), canvas_crs, QgsProject.instance())
    qgis_canvas.setExtent(to_canvas.transformBoundingBox(raster.extent().buffered(-250)))
    qgis_canvas.refresh()
    return raster, buildings


def _buildings_in_view(buildings, canvas, count):
    to_layer = QgsCoordinateTransform(
        canvas.mapSettings().destinationCrs(), buildings.crs(), QgsProject.instance()
    )
    view = to_layer.transformBoundingBox(canvas.extent().buffered(-20))
    found = [f for f in buildings.getFeatures(view) if f.geometry().area() > 1e-9]
    assert len(found) >= count, "the test view must show enough buildings"
    return found[:count]


def _canvas_pixel(canvas, layer, point_in_layer_crs: QgsPointXY) -> QPoint:
    to_map = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    device = canvas.getCoordinateTransform().transform(to_map.transform(point_in_layer_crs))
    return QPoint(round(device.x()), round(device.y()))


def _click(tool, canvas, pixel: QPoint, button=Qt.LeftButton):
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, pixel, button))


def test_remove_tool_marks_and_unmarks_buildings(joplin_layers, qgis_canvas):
    raster, buildings = joplin_layers
    session = EditSession(buildings, raster.crs())
    overlay = EditOverlay(qgis_canvas, session)
    tool = RemoveBuildingTool(qgis_canvas, session)
    qgis_canvas.setMapTool(tool)
    first, second = _buildings_in_view(buildings, qgis_canvas, 2)
    hover = _canvas_pixel(qgis_canvas, buildings, first.geometry().pointOnSurface().asPoint())
    tool.canvasMoveEvent(QgsMapMouseEvent(qgis_canvas, QEvent.MouseMove, hover, Qt.NoButton))
    assert tool.hover_band.numberOfVertices() > 0
    for feature in (first, second):
        _click(
            tool,
            qgis_canvas,
            _canvas_pixel(qgis_canvas, buildings, feature.geometry().pointOnSurface().asPoint()),
        )
    assert session.removed == [first.id(), second.id()]
    assert overlay.removed_band.numberOfVertices() > 0

    _click(
        tool, qgis_canvas, _canvas_pixel(qgis_canvas, buildings, first.geometry().pointOnSurface().asPoint())
    )
    assert session.removed == [second.id()]
    session.undo()
    assert session.removed == [second.id(), first.id()]
    session.clear()
    assert session.empty and overlay.removed_band.numberOfVertices() == 0
    overlay.remove()
    tool.remove_bands()


def test_create_tool_places_rotated_scaled_copies_under_the_cursor(joplin_layers, qgis_canvas):
    raster, buildings = joplin_layers
    session = EditSession(buildings, raster.crs())
    tool = CreateBuildingTool(qgis_canvas, session)
    qgis_canvas.setMapTool(tool)
    (source,) = _buildings_in_view(buildings, qgis_canvas, 1)
    _click(
        tool, qgis_canvas, _canvas_pixel(qgis_canvas, buildings, source.geometry().pointOnSurface().asPoint())
    )
    assert tool.source_fid == source.id()

    tool.set_angle(30)
    tool.set_scale(1.5)
    target_pixel = QPoint(300, 300)
    tool.canvasMoveEvent(QgsMapMouseEvent(qgis_canvas, QEvent.MouseMove, target_pixel, Qt.NoButton))
    assert tool.live_band.numberOfVertices() > 0
    _click(tool, qgis_canvas, target_pixel)

    (placement,) = session.placements
    source_area = session.geometry(source.id()).area()
    assert placement.source_fid == source.id()
    assert placement.outline.area() == pytest.approx(source_area * 1.5**2, rel=1e-6)
    centroid = placement.outline.centroid().asPoint()
    to_work = QgsCoordinateTransform(
        qgis_canvas.mapSettings().destinationCrs(), raster.crs(), QgsProject.instance()
    )
    expected = to_work.transform(qgis_canvas.getCoordinateTransform().toMapCoordinates(target_pixel))
    assert centroid.distance(expected) < raster.rasterUnitsPerPixelX() * 2
    assert placement.outline.intersects(QgsGeometry.fromPointXY(expected))

    session.undo()
    assert session.placements == []
    tool.remove_bands()


def test_create_tool_draws_a_new_shape(joplin_layers, qgis_canvas):
    raster, buildings = joplin_layers
    session = EditSession(buildings, raster.crs())
    tool = CreateBuildingTool(qgis_canvas, session)
    tool.start_drawing()
    for pixel in (QPoint(100, 100), QPoint(140, 100), QPoint(140, 130), QPoint(100, 130)):
        _click(tool, qgis_canvas, pixel)
    _click(tool, qgis_canvas, QPoint(0, 0), Qt.RightButton)
    assert tool.source_fid is None and tool.source_shape is not None
    _click(tool, qgis_canvas, QPoint(400, 400))
    (placement,) = session.placements
    assert placement.source_fid is None
    assert placement.outline.area() == pytest.approx(tool.source_shape.area(), rel=1e-6)
    tool.remove_bands()


def test_keys_drop_the_source_and_undo(joplin_layers, qgis_canvas):
    from qgis.PyQt.QtGui import QKeyEvent

    raster, buildings = joplin_layers
    session = EditSession(buildings, raster.crs())
    tool = CreateBuildingTool(qgis_canvas, session)
    (source,) = _buildings_in_view(buildings, qgis_canvas, 1)
    _click(
        tool, qgis_canvas, _canvas_pixel(qgis_canvas, buildings, source.geometry().pointOnSurface().asPoint())
    )
    _click(tool, qgis_canvas, QPoint(300, 300))
    assert len(session.placements) == 1
    tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_Z, Qt.ControlModifier))
    assert session.placements == []
    tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_Escape, Qt.NoModifier))
    assert tool.source_shape is None
    _click(tool, qgis_canvas, QPoint(5, 5))  # with no source, a click on empty ground places nothing
    assert session.placements == []
    tool.remove_bands()
