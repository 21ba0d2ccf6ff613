"""The Land cover tab: an image and its classified raster, regions (clicked, or every region of a class) and the
class each becomes, then a preview of the post-event image and its from→to map, or an export of the pair/series."""

import math
import os

from qgis.core import (
    QgsCoordinateTransform,
    QgsMapLayerProxyModel,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox, QgsVertexMarker
from qgis.PyQt import sip
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import InputError
from ..core.events.classes import CLASS_SCHEMES, PROJECT_CLASSES, SOURCE_CLASSES, load_class_map
from ..core.events.transitions import ClassChange
from ..plugin import layers as layer_io
from ..plugin.landcover_jobs import LandcoverRequest, landcover_export_job, landcover_preview_job
from ..plugin.region_tool import RegionPickTool
from ..plugin.results import remove_folder, remove_result_folder
from ..plugin.settings import load_settings
from ..plugin.tasks import LatestRequestRunner
from .messages import report, report_error
from .widgets import RunControls, button, choose_export_folder, double_spin, row, spin

MAPPING_HINT = (
    "In the Land cover tab choose the raster's class scheme, or a class mapping JSON file "
    '({"raster value": "project class"}).'
)


def _class_combo(name: str) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(name)
    for index, label in enumerate(PROJECT_CLASSES):
        combo.addItem(label, index)
    return combo


class LandcoverTab(QWidget):
    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.setObjectName("ChangenLandcoverTab")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.changes: list[ClassChange] = []
        self.markers: list[QgsVertexMarker | None] = []  # one per change: the click of a picked region
        self.preview_layer_ids: list[str] = []
        self.preview_dir: str | None = None
        self.preview_group = None
        self._preview_name = ""
        self._build()
        self.tool = RegionPickTool(self.canvas)
        self.tool.picked.connect(self.pick_region)
        self.tool.undo.connect(self.undo_change)
        self.pick_button.toggled.connect(self._pick_toggled)
        self.canvas.mapToolSet.connect(self._tool_replaced)
        self.preview_runner = LatestRequestRunner(
            self._preview_done, discard=remove_result_folder, owner=self
        )
        self.export_runner = LatestRequestRunner(self._export_done, discard=remove_result_folder, owner=self)
        self._classes_id = None
        self.classes_combo.layerChanged.connect(self._classes_changed)
        project = QgsProject.instance()
        project.layersAdded.connect(self._offer_class_rasters)
        project.layersRemoved.connect(self._offer_class_rasters)
        self._offer_class_rasters()

    # ------------------------------------------------------------------------------------------- layout
    def _build(self):
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.image_combo = QgsMapLayerComboBox()
        self.image_combo.setObjectName("ChangenLandcoverImage")
        self.image_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        form.addRow("Image", self.image_combo)
        self.classes_combo = QgsMapLayerComboBox()
        self.classes_combo.setObjectName("ChangenLandcoverClasses")
        self.classes_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.classes_combo.setToolTip("A single-band classified raster on the image's grid.")
        form.addRow("Land cover", self.classes_combo)
        self.source = QComboBox()
        self.source.setObjectName("ChangenLandcoverSource")
        self.source.addItems(CLASS_SCHEMES)
        self.source.setToolTip(
            "How the raster's values map onto the project classes (project: they are ids 0..8)."
        )
        form.addRow("Class scheme", self.source)
        self.scheme_note = QLabel()
        self.scheme_note.setObjectName("ChangenLandcoverScheme")
        self.scheme_note.setWordWrap(True)
        form.addRow(self.scheme_note)
        self.source.currentTextChanged.connect(self._explain_scheme)
        self._explain_scheme(self.source.currentText())
        self.class_map = QgsFileWidget()
        self.class_map.setObjectName("ChangenLandcoverClassMap")
        self.class_map.setFilter("JSON (*.json)")
        self.class_map.setToolTip('Any other scheme: {"raster value": "project class"}; replaces the scheme.')
        form.addRow("or class mapping", self.class_map)
        self.target = _class_combo("ChangenLandcoverTarget")
        self.pick_button = button(
            "Pick regions", "ChangenLandcoverPick", "Click regions on the map; right click undoes.", True
        )
        form.addRow("Clicked region becomes", row(self.target, self.pick_button))
        self.from_class, self.to_class = (
            _class_combo("ChangenLandcoverFrom"),
            _class_combo("ChangenLandcoverTo"),
        )
        self.add_rule = button(
            "Add", "ChangenLandcoverAddRule", "Every region of the first class becomes the second."
        )
        form.addRow("All regions of", row(self.from_class, QLabel("→"), self.to_class, self.add_rule))
        self.change_list = QListWidget()
        self.change_list.setObjectName("ChangenLandcoverChanges")
        self.change_list.setMaximumHeight(90)
        form.addRow(self.change_list)
        self.undo_button = button("Undo", "ChangenLandcoverUndo")
        self.clear_button = button("Clear", "ChangenLandcoverClear")
        form.addRow(row(self.undo_button, self.clear_button))
        self.steps = spin(
            1, 20, 1, "ChangenLandcoverSteps", "Images t1..tT; the changes above apply in step 1."
        )
        self.seed = spin(0, 2**31 - 1, 0, "ChangenLandcoverSeed")
        form.addRow("Time steps T", self.steps)
        form.addRow("Seed", self.seed)
        self.transition = double_spin(
            0.0,
            1.0,
            0.0,
            0.05,
            "ChangenLandcoverTransition",
            tip="Probability that a region switches class at random in each step (Changen2's transition table).",
        )
        form.addRow("Random transitions", self.transition)
        self.min_region = spin(
            0, 10**7, 256, "ChangenLandcoverMinRegion", "Smaller regions never switch at random."
        )
        form.addRow("Smallest random region (px)", self.min_region)
        layout.addLayout(form)
        self.preview_controls = RunControls("Preview", "ChangenLandcoverPreview")
        self.export_controls = RunControls("Export…", "ChangenLandcoverExport")
        layout.addWidget(self.preview_controls)
        layout.addWidget(self.export_controls)
        self.note = QLabel()
        self.note.setObjectName("ChangenLandcoverNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        layout.addStretch(1)
        self.add_rule.clicked.connect(self.add_class_rule)
        self.undo_button.clicked.connect(self.undo_change)
        self.clear_button.clicked.connect(self.clear_changes)
        self.preview_controls.run.clicked.connect(self.preview)
        self.preview_controls.cancel.clicked.connect(lambda: self.preview_runner.cancel())
        self.export_controls.run.clicked.connect(lambda: self.export())
        self.export_controls.cancel.clicked.connect(lambda: self.export_runner.cancel())

    def _explain_scheme(self, name: str):
        """What each raster value means under the chosen scheme, so a wrong choice shows before a preview."""
        values = ", ".join(f"{value} {cls}" for value, cls in SOURCE_CLASSES[name].items())
        self.scheme_note.setText(f"Raster values: {values}.")

    def _offer_class_rasters(self, *_):
        """Only single-band integer rasters in the Land cover combo."""
        layers = QgsProject.instance().mapLayers().values()
        self.classes_combo.setExceptedLayerList(
            [layer for layer in layers if not layer_io.is_label_raster(layer)]
        )

    def _classes_changed(self, layer):
        """Picks are pixels of one raster: another land-cover raster starts over (the combo also re-emits its
        layer when other layers are added, e.g. a preview)."""
        chosen = layer.id() if layer is not None else None
        if chosen != self._classes_id:
            self._classes_id = chosen
            self.clear_changes()

    # ------------------------------------------------------------------------------------------- changes
    def classes_layer(self) -> QgsRasterLayer:
        layer = self.classes_combo.currentLayer()
        if not layer_io.is_label_raster(layer):
            raise InputError(
                "Choose the land-cover raster (a single-band classified raster) in the Land cover tab."
            )
        return layer

    def _add_change(self, change: ClassChange, text: str, marker: QgsVertexMarker | None = None) -> None:
        self.changes.append(change)
        self.markers.append(marker)
        self.change_list.addItem(text)

    def add_class_rule(self):
        before, after = self.from_class.currentData(), self.to_class.currentData()
        if before == after:
            self.note.setText("A class cannot become itself: choose another target class.")
            return
        self._add_change(
            ClassChange(after, from_cls=before), f"all {PROJECT_CLASSES[before]} → {PROJECT_CLASSES[after]}"
        )

    def pick_region(self, map_point) -> None:
        """The connected region under `map_point` (canvas CRS) becomes the target class."""
        try:
            layer = self.classes_layer()
            to_layer = QgsCoordinateTransform(
                self.canvas.mapSettings().destinationCrs(), layer.crs(), QgsProject.instance()
            )
            point = to_layer.transform(map_point)
            frame = layer_io.PixelFrame(layer, layer_io.PixelWindow(0, 0, layer.width(), layer.height()))
            row_i, col_i = (math.floor(value + 0.5) for value in frame.row_col(point))  # centres at .0
            if not (0 <= row_i < layer.height() and 0 <= col_i < layer.width()):
                raise InputError(
                    f"The click lies outside '{layer.name()}': click a region on the land-cover raster."
                )
        except InputError as error:
            report_error(self.iface, "Pick region", error)
            return
        value, _ = layer.dataProvider().sample(point, 1)
        target = self.target.currentData()
        text = f"region of value {value:g} at row {row_i}, col {col_i} → {PROJECT_CLASSES[target]}"
        marker = QgsVertexMarker(self.canvas)
        marker.setCenter(map_point)
        marker.setIconType(QgsVertexMarker.ICON_CROSS)
        marker.setColor(QColor(255, 0, 255))
        marker.setPenWidth(2)
        self._add_change(ClassChange(target, at=(row_i, col_i)), text, marker)

    def undo_change(self):
        if self.changes:
            self.changes.pop()
            self.change_list.takeItem(self.change_list.count() - 1)
            self._remove_marker(self.markers.pop())

    def clear_changes(self):
        self.changes.clear()
        self.change_list.clear()
        for marker in self.markers:
            self._remove_marker(marker)
        self.markers.clear()

    def _remove_marker(self, marker) -> None:
        if marker is not None:
            self.canvas.scene().removeItem(marker)

    def _pick_toggled(self, on: bool):
        if on:
            self.canvas.setMapTool(self.tool)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def _tool_replaced(self, new_tool, _old=None):
        if new_tool is not self.tool:
            self.pick_button.setChecked(False)

    def close_tools(self):
        """Unset the map tool, remove the picks' markers, cancel running tasks, remove the temporary preview."""
        self.pick_button.setChecked(False)
        self.clear_changes()
        self.preview_runner.cancel()
        self.export_runner.cancel()
        self.discard_preview()

    # ------------------------------------------------------------------------------------------- requests
    def build_request(self) -> LandcoverRequest:
        image = self.image_combo.currentLayer()
        if not isinstance(image, QgsRasterLayer):
            raise InputError("Choose the image (a raster layer) in the Land cover tab.")
        labels = self.classes_layer()
        class_map = self.class_map.filePath().strip()
        mapping = load_class_map(class_map) if class_map else self.source.currentText()
        if not self.changes and self.transition.value() == 0:
            raise InputError(
                "Nothing would change: pick regions, add a class rule, or raise Random transitions above 0."
            )
        return LandcoverRequest(
            image_path=layer_io.raster_path(image),
            labels_path=layer_io.raster_path(labels),
            mapping=mapping,
            class_changes=tuple(self.changes),
            steps=self.steps.value(),
            seed=self.seed.value(),
            transition=self.transition.value(),
            min_region=self.min_region.value(),
            device=load_settings().device,
            inputs_hint=MAPPING_HINT,
        )

    # ------------------------------------------------------------------------------------------- preview
    def preview(self):
        try:
            request = self.build_request()
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Land-cover preview", error)
            return None
        self._preview_name = self.image_combo.currentLayer().name()  # the group names the image as it was
        task = self.preview_runner.submit("Changen land-cover preview", landcover_preview_job(request))
        self.preview_controls.follow(task)
        self.note.setText("Drawing the land-cover change…")
        return task

    def _preview_done(self, outcome):
        self.preview_controls.running(self.preview_runner.busy)
        if outcome.canceled:
            self.note.setText("Preview canceled.")
            return
        if outcome.error is not None:
            self.note.setText(report_error(self.iface, "Land-cover preview", outcome.error, outcome.details))
            return
        self.discard_preview()
        result = outcome.result
        group = layer_io.result_group(f"Changen land-cover preview: {self._preview_name}")
        self.preview_layer_ids = [layer.id() for layer in _add_result_layers(result, group, temporary=True)]
        self.preview_group = group
        self.preview_dir = result.folder
        self.note.setText(_summary("Preview", result))

    def discard_preview(self):
        layer_io.remove_layers(self.preview_layer_ids)
        self.preview_layer_ids = []
        group, self.preview_group = self.preview_group, None
        if group is not None and not sip.isdeleted(group) and group.parent() is not None:
            group.parent().removeChildNode(group)
        if self.preview_dir is not None:
            remove_folder(self.preview_dir)
            self.preview_dir = None

    # ------------------------------------------------------------------------------------------- export
    def export(self, folder: str | None = None):
        try:  # the inputs first: no folder dialog for an export that cannot run
            request = self.build_request()
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Land-cover export", error)
            return None
        folder = choose_export_folder(self, "Export the land-cover change into…", folder)
        if folder is None:
            return None
        name = self.image_combo.currentLayer().name()
        task = self.export_runner.submit(
            "Changen land-cover export", landcover_export_job(request, folder, name)
        )
        self.export_controls.follow(task)
        self.note.setText("Exporting the land-cover change…")
        return task

    def _export_done(self, outcome):
        self.export_controls.running(self.export_runner.busy)
        if outcome.canceled:
            self.note.setText("Export canceled: nothing was written.")
            return
        if outcome.error is not None:
            self.note.setText(report_error(self.iface, "Land-cover export", outcome.error, outcome.details))
            return
        result = outcome.result
        group = layer_io.result_group(f"Changen land-cover export: {os.path.basename(result.folder)}")
        _add_result_layers(result, group, temporary=False)
        summary = _summary("Exported", result) + f" Files in {result.folder}"
        if result.steps > 1:
            summary += " (animation.gif shows the series)."
        report(self.iface, summary)
        self.note.setText(summary)


# ----------------------------------------------------------------------------------------------- helpers
def _add_result_layers(result, group, temporary: bool) -> list:
    """The from→to map and the post-event image, as temporary layers of a preview; an export also loads every
    date's image and class map (hidden)."""
    from_to = QgsRasterLayer(result.from_to, f"from→to t0→t{result.steps}")
    layer_io.style_from_qml(from_to)
    post = QgsRasterLayer(result.post_image, f"image t{result.steps}")
    if temporary:
        return [layer_io.add_temporary_layer(layer, group=group) for layer in (from_to, post)]
    layers = [layer_io.add_layer(from_to, group=group)]
    dates = range(result.steps, -1, -1)
    for t in dates:
        image = post if t == result.steps else QgsRasterLayer(result.path(f"image_t{t}.tif"), f"image t{t}")
        layers.append(layer_io.add_layer(image, group=group))
        group.findLayer(image.id()).setItemVisibilityChecked(t == result.steps)
    for t in dates:
        classes = QgsRasterLayer(result.path(f"mask_t{t}.tif"), f"classes t{t}")
        layer_io.style_from_qml(classes)
        layers.append(layer_io.add_layer(classes, group=group))
        group.findLayer(classes.id()).setItemVisibilityChecked(False)
    return layers


def _summary(what: str, result) -> str:
    return (
        f"{what}: {result.regions} region(s) changed class ({sum(result.changed_pixels):,} px) over "
        f"{result.steps} step(s), {result.seconds:.1f} s on {result.device}."
    )
