"""The Changen dock: one tab per task (Synthesize, Detect) and a status line with the device in use."""

from qgis.PyQt.QtWidgets import QDockWidget, QLabel, QTabWidget, QVBoxLayout, QWidget


class ChangenDock(QDockWidget):
    def __init__(self, iface, dependencies, parent=None):
        super().__init__("Changen", parent or iface.mainWindow())
        self.setObjectName("ChangenDock")
        self.iface = iface
        body = QWidget(self)
        layout = QVBoxLayout(body)
        self.tabs = QTabWidget(body)
        self.tabs.setObjectName("ChangenTabs")
        layout.addWidget(self.tabs)
        self.status = QLabel(body)
        self.status.setObjectName("ChangenStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.setWidget(body)
        self.dependencies = dependencies
        if dependencies.ok:
            self.status.setText(f"Device: {_device_name()}")
        else:
            self.status.setText(dependencies.message())

    def close_tools(self):
        """Unset any map tool this dock installed on the canvas."""


def _device_name() -> str:
    from ..core.device import describe_device, pick_device

    return describe_device(pick_device("auto"))
