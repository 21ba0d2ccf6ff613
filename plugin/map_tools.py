"""Map tools for editing buildings before a synthesis: mark removals, place copies, draw new shapes.

The edits live in an `EditSession` (feature ids and geometries in a working CRS, normally the pre-event raster's),
independent of the canvas, so they survive tool switches and can be handed to a background job as plain data.
"""

import math
from dataclasses import dataclass

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import QObject, Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QTransform

REMOVE_COLOR = QColor(230, 30, 30)
CREATE_COLOR = QColor(40, 200, 60)
SOURCE_COLOR = QColor(255, 200, 0)
LIVE_COLOR = QColor(0, 200, 255)


@dataclass(frozen=True)
class Placement:
    """A copy of a building shape placed on the map: `outline` and `centre` in the session's working CRS.

    `source_fid` is the building it copies, or None for a drawn shape (then `outline` is the shape itself).
    """

    source_fid: int | None
    outline: QgsGeometry
    centre: QgsPointXY
    angle: float
    scale: float


def placed_outline(shape: QgsGeometry, centre: QgsPointXY, angle: float, scale: float) -> QgsGeometry:
    """`shape` scaled about its centroid, moved so the centroid sits on `centre`, rotated clockwise by `angle`°."""
    origin = shape.centroid().asPoint()
    moved = QgsGeometry(shape)
    moved.transform(
        QTransform.fromTranslate(-origin.x(), -origin.y())
        * QTransform.fromScale(scale, scale)
        * QTransform.fromTranslate(centre.x(), centre.y())
    )
    moved.rotate(angle, centre)
    return moved


class EditSession(QObject):
    """Removals and placements on one building layer, with undo."""

    changed = pyqtSignal()

    def __init__(self, layer: QgsVectorLayer, work_crs: QgsCoordinateReferenceSystem):
        super().__init__()
        self.layer = layer
        self.work_crs = work_crs
        self.removed: list[int] = []
        self.placements: list[Placement] = []
        self.random_drawn = False  # set when random events were added as edits (see the dock's Random events)
        self._history: list[tuple[str, object]] = []
        self._to_work = QgsCoordinateTransform(layer.crs(), work_crs, QgsProject.instance())

    def geometry(self, fid: int) -> QgsGeometry:
        """A building's geometry in the working CRS."""
        feature = self.layer.getFeature(fid)
        geometry = QgsGeometry(feature.geometry())
        if self.layer.crs() != self.work_crs:
            geometry.transform(self._to_work)
        return geometry

    def toggle_remove(self, fid: int) -> bool:
        """Mark a building for removal, or unmark it; returns whether it is now marked."""
        if fid in self.removed:
            self.removed.remove(fid)
            self._history.append(("unremove", fid))
            marked = False
        else:
            self.removed.append(fid)
            self._history.append(("remove", fid))
            marked = True
        self.changed.emit()
        return marked

    def add_placement(self, placement: Placement) -> None:
        self.placements.append(placement)
        self._history.append(("place", placement))
        self.changed.emit()

    def undo(self) -> bool:
        if not self._history:
            return False
        action, value = self._history.pop()
        if action == "remove":
            self.removed.remove(value)
        elif action == "unremove":
            self.removed.append(value)
        else:
            self.placements.remove(value)
        self.changed.emit()
        return True

    def clear(self) -> None:
        self.removed.clear()
        self.placements.clear()
        self._history.clear()
        self.random_drawn = False
        self.changed.emit()

    @property
    def empty(self) -> bool:
        return not self.removed and not self.placements

    def edited_extent(self) -> QgsRectangle | None:
        """Bounding box (working CRS) of everything touched, or None."""
        geometries = [self.geometry(fid) for fid in self.removed] + [p.outline for p in self.placements]
        if not geometries:
            return None
        box = QgsRectangle(geometries[0].boundingBox())
        for geometry in geometries[1:]:
            box.combineExtentWith(geometry.boundingBox())
        return box


def feature_at(layer: QgsVectorLayer, tool: QgsMapTool, map_point: QgsPointXY) -> int | None:
    """The id of the polygon under `map_point` (canvas CRS): one containing it, else the nearest within the
    click tolerance."""
    canvas = tool.canvas()
    to_layer = QgsCoordinateTransform(
        canvas.mapSettings().destinationCrs(), layer.crs(), QgsProject.instance()
    )
    radius = QgsMapTool.searchRadiusMU(canvas)
    box = QgsRectangle(
        map_point.x() - radius, map_point.y() - radius, map_point.x() + radius, map_point.y() + radius
    )
    box = to_layer.transformBoundingBox(box)
    point = QgsGeometry.fromPointXY(to_layer.transform(map_point))
    request = QgsFeatureRequest().setFilterRect(box).setNoAttributes()
    best, best_distance = None, math.inf
    for feature in layer.getFeatures(request):
        geometry = feature.geometry()
        if geometry.contains(point):
            return feature.id()
        distance = geometry.distance(point)
        if distance < best_distance:
            best, best_distance = feature.id(), distance
    return best


def _band(canvas, color: QColor, fill_alpha: int, width: int = 2, dashed: bool = False) -> QgsRubberBand:
    band = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
    band.setStrokeColor(color)
    fill = QColor(color)
    fill.setAlpha(fill_alpha)
    band.setFillColor(fill)
    band.setWidth(width)
    if dashed:
        band.setLineStyle(Qt.DashLine)
    return band


class EditOverlay:
    """Rubber bands on the canvas mirroring an EditSession: red = remove, green = placed copies."""

    def __init__(self, canvas, session: EditSession):
        self.canvas = canvas
        self.session = session
        self.removed_band = _band(canvas, REMOVE_COLOR, 40)
        self.placed_band = _band(canvas, CREATE_COLOR, 90)
        session.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        crs = self.session.work_crs
        self.removed_band.reset(QgsWkbTypes.PolygonGeometry)
        for fid in self.session.removed:
            self.removed_band.addGeometry(self.session.geometry(fid), crs)
        self.placed_band.reset(QgsWkbTypes.PolygonGeometry)
        for placement in self.session.placements:
            self.placed_band.addGeometry(placement.outline, crs)

    def set_visible(self, visible: bool) -> None:
        for band in (self.removed_band, self.placed_band):
            band.setVisible(visible)

    def remove(self) -> None:
        self.session.changed.disconnect(self.refresh)
        for band in (self.removed_band, self.placed_band):
            self.canvas.scene().removeItem(band)


class RemoveBuildingTool(QgsMapTool):
    """Click a building to mark it for removal; click it again to unmark; right click or Ctrl+Z undoes."""

    def __init__(self, canvas, session: EditSession):
        super().__init__(canvas)
        self.session = session
        self.hover_band = _band(canvas, REMOVE_COLOR, 0, width=1, dashed=True)
        self.setCursor(Qt.PointingHandCursor)

    def canvasMoveEvent(self, event):  # noqa: N802 (Qt's name)
        """Outline the building a click would mark."""
        self.hover_band.reset(QgsWkbTypes.PolygonGeometry)
        fid = feature_at(self.session.layer, self, self.toMapCoordinates(event.pos()))
        if fid is not None:
            self.hover_band.addGeometry(self.session.geometry(fid), self.session.work_crs)

    def deactivate(self):
        self.hover_band.reset(QgsWkbTypes.PolygonGeometry)
        super().deactivate()

    def remove_bands(self) -> None:
        self.canvas().scene().removeItem(self.hover_band)

    def keyPressEvent(self, event):  # noqa: N802 (Qt's name)
        if event.key() == Qt.Key_Z and event.modifiers() & Qt.ControlModifier:
            self.session.undo()
            event.accept()
        else:
            event.ignore()

    def canvasReleaseEvent(self, event):  # noqa: N802 (Qt's name)
        if event.button() == Qt.RightButton:
            self.session.undo()
            return
        fid = feature_at(self.session.layer, self, self.toMapCoordinates(event.pos()))
        if fid is not None:
            self.session.toggle_remove(fid)


class CreateBuildingTool(QgsMapTool):
    """Place copies of a building: first click a source building (or draw a shape), then click where copies go.

    A live outline follows the mouse with the current angle and scale. In drawing mode left clicks add vertices and
    a right click closes the shape. Right click while placing goes back to picking a source.
    """

    source_changed = pyqtSignal(str)

    def __init__(self, canvas, session: EditSession):
        super().__init__(canvas)
        self.session = session
        self.angle = 0.0
        self.scale = 1.0
        self.source_fid: int | None = None
        self.source_shape: QgsGeometry | None = None
        self.drawing = False
        self.draft: list[QgsPointXY] = []
        self.source_band = _band(canvas, SOURCE_COLOR, 60)
        self.live_band = _band(canvas, LIVE_COLOR, 40, dashed=True)
        self._to_work = QgsCoordinateTransform(
            canvas.mapSettings().destinationCrs(), session.work_crs, QgsProject.instance()
        )
        canvas.destinationCrsChanged.connect(self._update_transform)
        self.setCursor(Qt.CrossCursor)

    def _update_transform(self):
        self._to_work = QgsCoordinateTransform(
            self.canvas().mapSettings().destinationCrs(), self.session.work_crs, QgsProject.instance()
        )

    def set_angle(self, angle: float) -> None:
        self.angle = float(angle)

    def set_scale(self, scale: float) -> None:
        self.scale = float(scale)

    def start_drawing(self) -> None:
        """Next clicks draw a new shape instead of picking a building."""
        self.drawing = True
        self.draft = []
        self.source_fid, self.source_shape = None, None
        self.source_band.reset(QgsWkbTypes.PolygonGeometry)
        self.source_changed.emit("Drawing a shape: click vertices, right-click to finish.")

    def set_source(self, fid: int | None, shape: QgsGeometry | None) -> None:
        self.source_fid, self.source_shape = fid, shape
        self.source_band.reset(QgsWkbTypes.PolygonGeometry)
        if shape is not None:
            self.source_band.addGeometry(shape, self.session.work_crs)
            what = f"building {fid}" if fid is not None else "the drawn shape"
            self.source_changed.emit(f"Copying {what}: click where copies go (right-click: pick another).")
        else:
            self.source_changed.emit("Click a building to copy, or draw a shape.")

    def work_point(self, event) -> QgsPointXY:
        return self._to_work.transform(self.toMapCoordinates(event.pos()))

    def canvasMoveEvent(self, event):  # noqa: N802 (Qt's name)
        self.live_band.reset(QgsWkbTypes.PolygonGeometry)
        if self.drawing and self.draft:
            ring = [*self.draft, self.work_point(event)]
            if len(ring) >= 3:
                self.live_band.addGeometry(QgsGeometry.fromPolygonXY([ring]), self.session.work_crs)
        elif self.source_shape is not None:
            outline = placed_outline(self.source_shape, self.work_point(event), self.angle, self.scale)
            self.live_band.addGeometry(outline, self.session.work_crs)

    def canvasReleaseEvent(self, event):  # noqa: N802 (Qt's name)
        if self.drawing:
            self._draw(event)
        elif event.button() == Qt.RightButton:
            self.live_band.reset(QgsWkbTypes.PolygonGeometry)
            self.set_source(None, None)
        elif self.source_shape is None:
            fid = feature_at(self.session.layer, self, self.toMapCoordinates(event.pos()))
            if fid is not None:
                self.set_source(fid, self.session.geometry(fid))
        else:
            centre = self.work_point(event)
            outline = placed_outline(self.source_shape, centre, self.angle, self.scale)
            self.session.add_placement(Placement(self.source_fid, outline, centre, self.angle, self.scale))

    def _draw(self, event):
        if event.button() == Qt.LeftButton:
            self.draft.append(self.work_point(event))
            return
        if len(self.draft) >= 3:
            self.drawing = False
            shape = QgsGeometry.fromPolygonXY([self.draft])
            self.draft = []
            self.set_source(None, shape)

    def keyPressEvent(self, event):  # noqa: N802 (Qt's name)
        """Esc drops the source (or the shape being drawn); Ctrl+Z undoes the last edit."""
        if event.key() == Qt.Key_Escape:
            self.drawing, self.draft = False, []
            self.live_band.reset(QgsWkbTypes.PolygonGeometry)
            self.set_source(None, None)
            event.accept()
        elif event.key() == Qt.Key_Z and event.modifiers() & Qt.ControlModifier:
            self.session.undo()
            event.accept()
        else:
            event.ignore()

    def activate(self):
        self.source_band.setVisible(True)
        super().activate()

    def deactivate(self):
        self.live_band.reset(QgsWkbTypes.PolygonGeometry)
        self.source_band.setVisible(False)
        super().deactivate()

    def remove_bands(self) -> None:
        for band in (self.source_band, self.live_band):
            self.canvas().scene().removeItem(band)
