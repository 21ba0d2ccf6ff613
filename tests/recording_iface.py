"""A QGIS interface for tests that records what a plugin adds, so a test can check `unload` removed it all.

pytest-qgis's `QgisInterface` stubs most calls without remembering them and lacks the raster-menu and
dock-removal calls; this one keeps every added action, menu entry and dock until it is removed again.
"""

from pytest_qgis.qgis_interface import QgisInterface
from qgis.core import QgsProject
from qgis.PyQt.QtCore import Qt


class RecordingIface(QgisInterface):
    def __init__(self, canvas, message_bar, main_window):
        super().__init__(canvas, message_bar, main_window)
        self.toolbar_actions = []
        self.menu_actions = []
        self.docks = []

    def addToolBarIcon(self, action):  # noqa: N802 (QGIS's name)
        self.toolbar_actions.append(action)

    def removeToolBarIcon(self, action):  # noqa: N802 (QGIS's name)
        self.toolbar_actions.remove(action)

    def addPluginToMenu(self, name, action):  # noqa: N802 (QGIS's name)
        self.menu_actions.append((name, action))

    def removePluginMenu(self, name, action):  # noqa: N802 (QGIS's name)
        self.menu_actions.remove((name, action))

    addPluginToRasterMenu = addPluginToMenu  # noqa: N815 (QGIS's name)
    removePluginRasterMenu = removePluginMenu  # noqa: N815 (QGIS's name)

    def addDockWidget(self, area, dock):  # noqa: N802 (QGIS's name)
        self.mainWindow().addDockWidget(Qt.DockWidgetArea(area), dock)
        self.docks.append(dock)

    def addTabifiedDockWidget(self, area, dock, tabify_with=None, raise_tab=False):  # noqa: N802
        self.addDockWidget(area, dock)

    def removeDockWidget(self, dock):  # noqa: N802 (QGIS's name)
        self.mainWindow().removeDockWidget(dock)
        self.docks.remove(dock)

    def detach(self):
        """Stop following the project's layers; call before the canvas's window is deleted (the slot would
        touch the deleted canvas, and an exception in a Qt slot aborts the process)."""
        QgsProject.instance().layersAdded.disconnect(self.addLayers)
        QgsProject.instance().removeAll.disconnect(self.removeAllLayers)

    def leftovers(self) -> list[str]:
        """Descriptions of everything still added; empty after a clean unload."""
        found = [f"toolbar action {action.text()!r}" for action in self.toolbar_actions]
        found += [f"menu entry {name}/{action.text()}" for name, action in self.menu_actions]
        found += [f"dock {dock.objectName()!r}" for dock in self.docks]
        return found
