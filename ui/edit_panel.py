"""The Synthesize tab's "Edit buildings on the map" group: the Remove / Copy / Draw map tools, rotation and scale
of copies, undo and clear, the edit outlines on the canvas, and the edit session they all work on."""

from collections.abc import Callable

from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsVectorLayer
from qgis.PyQt.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QLabel

from ..core.errors import InputError
from ..plugin.map_tools import (
    CreateBuildingTool,
    EditOverlay,
    EditSession,
    Placement,
    RemoveBuildingTool,
    placed_outline,
)
from .messages import report_error
from .widgets import button, double_spin, row


class EditPanel(QGroupBox):
    """`layers()` gives the building layer to edit and the CRS edits are made in (the image's); `note(text)`
    shows a hint to the analyst. The session starts on first use and ends with `reset()`."""

    def __init__(
        self,
        iface,
        layers: Callable[[], tuple[QgsVectorLayer, QgsCoordinateReferenceSystem]],
        note: Callable[[str], None],
        parent=None,
    ):
        super().__init__("Edit buildings on the map", parent)
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.layers = layers
        self.note = note
        self.session: EditSession | None = None
        self.overlay: EditOverlay | None = None
        self.remove_tool: RemoveBuildingTool | None = None
        self.create_tool: CreateBuildingTool | None = None
        self.is_current_tab = True
        self._build()

    def _build(self):
        form = QFormLayout(self)
        self.remove_button = button(
            "Remove", "ChangenRemoveTool", "Click buildings to mark them for removal.", True
        )
        self.create_button = button(
            "Copy", "ChangenCreateTool", "Click a building to copy, then click where copies go.", True
        )
        self.draw_button = button("Draw shape", "ChangenDrawTool", "Draw a new building outline to place.")
        form.addRow(row(self.remove_button, self.create_button, self.draw_button))
        self.angle = double_spin(
            -180, 180, 0, 15, "ChangenAngle", "°", "Rotation of placed copies (clockwise)."
        )
        self.scale = double_spin(0.25, 4.0, 1.0, 0.1, "ChangenScale", "×", "Scale of placed copies.")
        form.addRow("Rotation / scale", row(self.angle, self.scale))
        self.undo_button = button("Undo", "ChangenUndo")
        self.clear_button = button("Clear", "ChangenClear")
        form.addRow(row(self.undo_button, self.clear_button))
        self.show_edits = QCheckBox("Show edits on the map")
        self.show_edits.setObjectName("ChangenShowEdits")
        self.show_edits.setChecked(True)
        self.show_edits.setToolTip("Hide the red/green outlines to compare the preview with the image.")
        form.addRow(self.show_edits)
        self.edit_summary = QLabel("No edits.")
        self.edit_summary.setObjectName("ChangenEditSummary")
        self.edit_summary.setWordWrap(True)
        form.addRow(self.edit_summary)

        self.remove_button.toggled.connect(self._remove_toggled)
        self.create_button.toggled.connect(self._create_toggled)
        self.draw_button.clicked.connect(self._draw_clicked)
        self.undo_button.clicked.connect(lambda: self.session and self.session.undo())
        self.clear_button.clicked.connect(lambda: self.session and self.session.clear())
        self.show_edits.toggled.connect(self._show_overlay)
        self.angle.valueChanged.connect(lambda value: self.create_tool and self.create_tool.set_angle(value))
        self.scale.valueChanged.connect(lambda value: self.create_tool and self.create_tool.set_scale(value))

    # ------------------------------------------------------------------------------------------- session
    def ensure_session(self) -> EditSession:
        if self.session is None:
            buildings, crs = self.layers()
            self.session = EditSession(buildings, crs)
            self.overlay = EditOverlay(self.canvas, self.session)
            self._show_overlay()
            self.session.changed.connect(self._edits_changed)
        return self.session

    def reset(self):
        """End the session: map tools unset, outlines removed, edits forgotten."""
        self._unset_tools()
        if self.overlay is not None:
            self.overlay.remove()
        self.session, self.overlay = None, None
        self._edits_changed()

    def set_current_tab(self, current: bool) -> None:
        """The edit outlines belong to the Synthesize tab: hidden while another tab is shown."""
        self.is_current_tab = current
        self._show_overlay()

    def _show_overlay(self, *_):
        if self.overlay is not None:
            self.overlay.set_visible(self.show_edits.isChecked() and self.is_current_tab)

    def _edits_changed(self):
        if self.session is None or self.session.empty:
            self.edit_summary.setText("No edits: use Remove / Copy on the map, or Random events.")
            return
        drawn = sum(p.source_fid is None for p in self.session.placements)
        text = f"{len(self.session.removed)} building(s) to remove, {len(self.session.placements)} to create"
        self.edit_summary.setText(text + (f" ({drawn} drawn)." if drawn else "."))

    # ------------------------------------------------------------------------------------------- map tools
    def _remove_toggled(self, checked: bool):
        self._toggle_tool("remove", checked)

    def _create_toggled(self, checked: bool):
        tool = self._toggle_tool("create", checked)
        if tool is not None:
            tool.set_angle(self.angle.value())
            tool.set_scale(self.scale.value())
            tool.source_changed.connect(self.note)
            self.note("Click a building to copy, or Draw shape.")

    def _toggle_tool(self, kind: str, checked: bool):
        """Checked: a fresh map tool of `kind` ("remove" or "create") on the canvas, the other button released;
        unchecked: the tool leaves the canvas. Returns the new tool (None when unchecked or without a session)."""
        button, other = (
            (self.remove_button, self.create_button)
            if kind == "remove"
            else (self.create_button, self.remove_button)
        )
        current = getattr(self, f"{kind}_tool")
        if not checked:
            if current is not None and self.canvas.mapTool() is current:
                self.canvas.unsetMapTool(current)
            return None
        try:
            session = self.ensure_session()
        except InputError as error:
            button.setChecked(False)
            report_error(self.iface, "Remove buildings" if kind == "remove" else "Copy buildings", error)
            return None
        other.setChecked(False)
        if current is not None:
            current.remove_bands()
        tool = (RemoveBuildingTool if kind == "remove" else CreateBuildingTool)(self.canvas, session)
        setattr(self, f"{kind}_tool", tool)
        self.canvas.setMapTool(tool)
        tool.deactivated.connect(lambda: button.setChecked(False))
        return tool

    def _draw_clicked(self):
        self.create_button.setChecked(True)
        if self.create_tool is not None and self.create_button.isChecked():
            self.create_tool.start_drawing()

    def _unset_tools(self):
        for tool in (self.remove_tool, self.create_tool):
            if tool is not None and self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        for tool in (self.remove_tool, self.create_tool):
            if tool is not None:
                tool.remove_bands()
        self.remove_tool, self.create_tool = None, None
        self.remove_button.setChecked(False)
        self.create_button.setChecked(False)


def unplaced_shape(session: EditSession, placement: Placement) -> QgsGeometry:
    """The shape a placement copies, before rotation and scaling (work CRS)."""
    if placement.source_fid is not None:
        return session.geometry(placement.source_fid)
    undo = QgsGeometry(placement.outline)
    undo.rotate(-placement.angle, placement.centre)
    return placed_outline(undo, placement.centre, 0.0, 1.0 / placement.scale)


def copy_outline(session: EditSession, source_fid, centre, angle: float, scale: float) -> QgsGeometry:
    return placed_outline(session.geometry(source_fid), centre, angle, scale)
