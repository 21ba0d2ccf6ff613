"""The plugin object QGIS creates: it owns every action, dock and provider it adds, and removes them all."""

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QPushButton

from . import ICON_PATH, LOG_TAG
from .deps import DependencyReport, check_dependencies, isolate_bundled_native_libraries
from .installer import activate, packages_root


class ChangenPlugin:
    def __init__(self, iface):
        self.iface = iface
        activate(
            packages_root(QgsApplication.qgisSettingsDirPath())
        )  # packages the in-QGIS installer put there
        self.dependencies = check_dependencies()
        if self.dependencies.ok:
            self._isolate_native_libraries()
        self.provider = None
        self.dock = None
        self.action = None

    def _isolate_native_libraries(self):
        """Before anything imports rasterio/shapely/pyproj: see `deps.isolate_bundled_native_libraries`."""
        isolation = isolate_bundled_native_libraries()
        if isolation.too_late:
            QgsMessageLog.logMessage(
                f"{', '.join(isolation.too_late)} were imported before Changen loaded and use QGIS's "
                "GDAL/GEOS/PROJ; if Changen crashes or misplaces geometry, disable the plugin that imported them.",
                LOG_TAG,
                Qgis.Warning,
            )
        for package, error in isolation.broken.items():
            QgsMessageLog.logMessage(f"{package} failed to load: {error}", LOG_TAG, Qgis.Critical)
        if isolation.broken:
            self.dependencies = DependencyReport(tuple(isolation.broken))

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        """Idempotent: qgis_process calls it without initGui, the desktop calls it from initGui."""
        if self.provider is not None:
            return
        from .provider import ChangenProvider

        # With packages missing the provider stays, its algorithms saying what is missing and how to install it.
        self.provider = ChangenProvider(self.dependencies)
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS's name)
        self.initProcessing()
        if self.iface is None:
            return
        from ..ui.dock import ChangenDock

        icon = QIcon(ICON_PATH)
        self.dock = ChangenDock(self.iface, self.dependencies)
        self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.action = QAction(icon, LOG_TAG, self.iface.mainWindow())
        self.action.setObjectName("ChangenShowDock")
        self.action.setCheckable(True)
        self.action.setChecked(True)
        self.action.toggled.connect(self.dock.setVisible)
        self.dock.visibilityChanged.connect(self.action.setChecked)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToRasterMenu(LOG_TAG, self.action)
        if not self.dependencies.ok:
            message = self.dependencies.message()
            QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Warning)
            bar = self.iface.messageBar()
            item = bar.createMessage(LOG_TAG, message)
            button = QPushButton("Install packages…", item)
            button.setObjectName("ChangenInstallButton")
            button.clicked.connect(self.open_installer)
            item.layout().addWidget(button)
            bar.pushWidget(item, Qgis.Warning)

    def open_installer(self):
        from ..ui.install_dialog import InstallDialog

        InstallDialog(self.dependencies.missing, self.iface.mainWindow()).exec_()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.iface is None:
            return
        if self.action is not None:
            self.iface.removePluginRasterMenu(LOG_TAG, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.dock is not None:
            self.dock.close_tools()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
