"""The Land cover tab's map tool: a click picks the connected region under it (its class changes), a right click
undoes the last pick. The tool only reports map points; the tab turns them into core `ClassChange`s."""

from qgis.core import QgsPointXY
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import Qt, pyqtSignal


class RegionPickTool(QgsMapTool):
    picked = pyqtSignal(QgsPointXY)  # the click, in the canvas CRS
    undo = pyqtSignal()

    def __init__(self, canvas):
        super().__init__(canvas)
        self.setCursor(Qt.CrossCursor)

    def canvasReleaseEvent(self, event):  # noqa: N802 (Qt's name)
        if event.button() == Qt.RightButton:
            self.undo.emit()
        elif event.button() == Qt.LeftButton:
            self.picked.emit(self.toMapCoordinates(event.pos()))
