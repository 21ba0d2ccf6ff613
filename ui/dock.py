"""The Changen dock: one tab per task (Synthesize, Detect, Land cover) and a status line with the device in use."""

from qgis.PyQt.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import InputError
from ..plugin import LOG_TAG


class ChangenDock(QDockWidget):
    def __init__(self, iface, dependencies, parent=None):
        super().__init__(LOG_TAG, parent or iface.mainWindow())
        self.setObjectName("ChangenDock")
        self.iface = iface
        body = QWidget(self)
        layout = QVBoxLayout(body)
        self.tabs = QTabWidget(body)
        self.tabs.setObjectName("ChangenTabs")
        layout.addWidget(self.tabs)
        footer = QHBoxLayout()
        self.status = QLabel(body)
        self.status.setObjectName("ChangenStatus")
        self.status.setWordWrap(True)
        footer.addWidget(self.status, 1)
        self.settings_button = QPushButton("Settings…", body)
        self.settings_button.setObjectName("ChangenSettings")
        footer.addWidget(self.settings_button)
        layout.addLayout(footer)
        self.setWidget(body)
        self.dependencies = dependencies
        self.synthesize_tab = None
        self.detect_tab = None
        self.landcover_tab = None
        if dependencies.ok:
            from .detect_tab import DetectTab
            from .landcover_tab import LandcoverTab
            from .synthesize_tab import SynthesizeTab

            self.synthesize_tab = SynthesizeTab(iface, body)
            self.detect_tab = DetectTab(iface, body)
            self.tabs.addTab(self.synthesize_tab, "Synthesize")
            self.tabs.addTab(self.detect_tab, "Detect")
            self.landcover_tab = LandcoverTab(iface, body)
            self.tabs.addTab(self.landcover_tab, "Land cover")
            self.tabs.currentChanged.connect(
                lambda _: self.synthesize_tab.set_current_tab(
                    self.tabs.currentWidget() is self.synthesize_tab
                )
            )
            self.settings_button.clicked.connect(self.open_settings)
            self.show_device()
        else:
            self.settings_button.setEnabled(False)
            self.status.setText(dependencies.message())

    def show_device(self):
        """Status line: the device the settings resolve to (an unusable choice says how to fix it)."""
        from ..plugin.settings import load_settings

        choice = load_settings().device
        try:
            self.status.setText(f"Device: {_device_name(choice)} (setting: {choice})")
        except InputError as error:
            self.status.setText(f"Device setting '{choice}' is unusable: {error}")

    def open_settings(self):
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self)
        if dialog.exec_():
            self.show_device()

    def close_tools(self):
        """Unset any map tool this dock installed on the canvas; cancel its running tasks."""
        for tab in (self.synthesize_tab, self.detect_tab, self.landcover_tab):
            if tab is not None:
                tab.close_tools()


def _device_name(choice: str = "auto") -> str:
    from ..core.device import describe_device, pick_device

    return describe_device(pick_device(choice))
