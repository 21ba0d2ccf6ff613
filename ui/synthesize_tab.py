"""The Synthesize tab: pick layers, edit buildings on the map, preview a synthesized post-event image, export."""

import os
import time

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsGeometry,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import InputError
from ..plugin import layers as layer_io
from ..plugin.generators import generator_is_cached, warm_up_job
from ..plugin.map_tools import (
    CreateBuildingTool,
    EditOverlay,
    EditSession,
    Placement,
    RemoveBuildingTool,
    placed_outline,
)
from ..plugin.method_scope import scope_of
from ..plugin.settings import SYNTHESIS_METHODS, UNCHANGED_MODES, load_settings, save_settings
from ..plugin.synthesis_jobs import PlacementSpec, SynthesisRequest, export_job, preview_job
from ..plugin.tasks import LatestRequestRunner
from .messages import log, report, report_error
from .pair_notes import overlap_note, view_note
from .widgets import RunControls, button, double_spin, row, spin

PREVIEW_MAX_SIDE = 1024
EXPORT_MAX_SIDE = 4096
EDIT_MARGIN_PIXELS = 96
PREVIEW_LAYER_NAME = "post-event preview"
OUTLINE_LAYER_NAME = "change outlines (preview)"
METHOD_LABELS = {
    "changen": "Changen (generator)",
    "changen2": "Changen2 (RS-DiT diffusion)",
    "copy-paste": "Copy-Paste",
    "inpainting": "Inpainting",
}
UNCHANGED_LABELS = {"keep": "Keep the rest of the image", "regenerate": "Regenerate the whole image"}


class SynthesizeTab(QWidget):
    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.setObjectName("ChangenSynthesizeTab")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.session: EditSession | None = None
        self.overlay: EditOverlay | None = None
        self.remove_tool: RemoveBuildingTool | None = None
        self.create_tool: CreateBuildingTool | None = None
        self.preview_layer_ids: list[str] = []
        self.preview_dir: str | None = None
        self.mask_polygons: dict[str, QgsVectorLayer] = {}
        self.last_preview_seconds: float | None = None
        self._started = 0.0
        self._chosen_layers = None
        self.is_current_tab = True
        self._build()
        self.preview_runner = LatestRequestRunner(self._preview_done, discard=_remove_dir_of, owner=self)
        self.export_runner = LatestRequestRunner(self._export_done, discard=_remove_dir_of, owner=self)
        self.warm_up_runner = LatestRequestRunner(self._warmed_up, owner=self)
        self.image_combo.layerChanged.connect(self._layers_changed)
        self.buildings_combo.layerChanged.connect(self._layers_changed)
        self._buildings_chosen = False
        self.buildings_combo.activated.connect(self._buildings_picked)
        QgsProject.instance().layersAdded.connect(self._prefer_polygon_buildings)
        self._prefer_polygon_buildings()
        self._layers_changed()

    def _buildings_picked(self, _index):
        self._buildings_chosen = True

    def _prefer_polygon_buildings(self, *_):
        """Footprint polygons are the usual building layer: the combo's first layer is often the image itself,
        so pick a polygon layer until the user chooses one."""
        if self._buildings_chosen or isinstance(self.buildings_combo.currentLayer(), QgsVectorLayer):
            return
        for layer in QgsProject.instance().mapLayers().values():
            if isinstance(layer, QgsVectorLayer) and layer.geometryType() == QgsWkbTypes.PolygonGeometry:
                self.buildings_combo.setLayer(layer)
                return

    # ------------------------------------------------------------------------------------------- layout
    def _build(self):
        layout = QVBoxLayout(self)
        inputs = QFormLayout()
        self.image_combo = QgsMapLayerComboBox()
        self.image_combo.setObjectName("ChangenPreImage")
        self.image_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        inputs.addRow("Pre-event image", self.image_combo)
        self.buildings_combo = QgsMapLayerComboBox()
        self.buildings_combo.setObjectName("ChangenBuildings")
        self.buildings_combo.setFilters(
            QgsMapLayerProxyModel.PolygonLayer | QgsMapLayerProxyModel.RasterLayer
        )
        self.buildings_combo.setToolTip("Building footprints (polygons) or a building mask raster, any CRS.")
        inputs.addRow("Buildings", self.buildings_combo)
        self.crs_note = QLabel()
        self.crs_note.setObjectName("ChangenCrsNote")
        self.crs_note.setWordWrap(True)
        inputs.addRow(self.crs_note)
        layout.addLayout(inputs)

        edits = QGroupBox("Edit buildings on the map")
        edit_form = QFormLayout(edits)
        self.remove_button = button(
            "Remove", "ChangenRemoveTool", "Click buildings to mark them for removal.", True
        )
        self.create_button = button(
            "Copy", "ChangenCreateTool", "Click a building to copy, then click where copies go.", True
        )
        self.draw_button = button("Draw shape", "ChangenDrawTool", "Draw a new building outline to place.")
        edit_form.addRow(row(self.remove_button, self.create_button, self.draw_button))
        self.angle = double_spin(
            -180, 180, 0, 15, "ChangenAngle", "°", "Rotation of placed copies (clockwise)."
        )
        self.scale = double_spin(0.25, 4.0, 1.0, 0.1, "ChangenScale", "×", "Scale of placed copies.")
        edit_form.addRow("Rotation / scale", row(self.angle, self.scale))
        self.undo_button = button("Undo", "ChangenUndo")
        self.clear_button = button("Clear", "ChangenClear")
        edit_form.addRow(row(self.undo_button, self.clear_button))
        self.show_edits = QCheckBox("Show edits on the map")
        self.show_edits.setObjectName("ChangenShowEdits")
        self.show_edits.setChecked(True)
        self.show_edits.setToolTip("Hide the red/green outlines to compare the preview with the image.")
        edit_form.addRow(self.show_edits)
        self.edit_summary = QLabel("No edits.")
        self.edit_summary.setObjectName("ChangenEditSummary")
        self.edit_summary.setWordWrap(True)
        edit_form.addRow(self.edit_summary)
        layout.addWidget(edits)

        random_box = QGroupBox("Random events")
        random_form = QFormLayout(random_box)
        self.random_remove = spin(
            0,
            500,
            0,
            "ChangenRandomRemove",
            "Buildings removed at random in every step (step 1: unless drawn with Random events).",
        )
        self.random_create = spin(
            0,
            500,
            0,
            "ChangenRandomCreate",
            "Copies placed at random in every step (step 1: unless drawn with Random events).",
        )
        random_form.addRow("Remove / create", row(self.random_remove, self.random_create))
        self.seed = spin(0, 2**31 - 1, 0, "ChangenSeed", "Same seed, same events and images.")
        self.random_button = button(
            "Random events",
            "ChangenRandomEvents",
            "Draw step 1's random removals and copies on the map now, to see and edit them before the preview.",
        )
        random_form.addRow("Seed", row(self.seed, self.random_button))
        layout.addWidget(random_box)

        run_form = QFormLayout()
        self.steps = spin(
            1, 20, 1, "ChangenSteps", "Time steps T: images t1…tT are synthesized one after another."
        )
        self.method = QComboBox()
        self.method.setObjectName("ChangenMethod")
        for key in SYNTHESIS_METHODS:
            self.method.addItem(METHOD_LABELS[key], key)
        self.method.setCurrentIndex(SYNTHESIS_METHODS.index(load_settings().synthesis_method))
        run_form.addRow("Time steps / method", row(self.steps, self.method))
        self.method_hint = QLabel(scope_of(self.method.currentData()).description)  # before the run
        self.method_hint.setObjectName("ChangenMethodHint")
        self.method_hint.setWordWrap(True)
        run_form.addRow("", self.method_hint)
        self.unchanged = QComboBox()
        self.unchanged.setObjectName("ChangenUnchanged")
        for key in UNCHANGED_MODES:
            self.unchanged.addItem(UNCHANGED_LABELS[key], key)
        self.unchanged.setCurrentIndex(UNCHANGED_MODES.index(load_settings().synthesis_unchanged))
        self.unchanged.setToolTip(
            "Changen only. Keep: the image stays as it was outside the change; only the edited buildings are "
            "generated (blended in, colours matched). Regenerate: the generator redraws the whole image, as in the "
            "paper (varied training data, but colours and texture change everywhere)."
        )
        self.unchanged.setEnabled(self.method.currentData() in ("changen", "changen2"))
        run_form.addRow("Changen", self.unchanged)
        layout.addLayout(run_form)
        self.preview_controls = RunControls("Preview", "ChangenPreview")
        self.preview_controls.run.setToolTip(
            "Synthesize the current map view (or the edited area) in the background."
        )
        layout.addWidget(self.preview_controls)
        self.export_controls = RunControls("Export…", "ChangenExport")
        self.export_controls.run.setToolTip(
            "Write pre/post images, masks, change mask, polygons and the event log."
        )
        layout.addWidget(self.export_controls)
        self.result_note = QLabel()
        self.result_note.setObjectName("ChangenSynthesisNote")
        self.result_note.setWordWrap(True)
        layout.addWidget(self.result_note)
        layout.addStretch(1)

        self.remove_button.toggled.connect(self._remove_toggled)
        self.create_button.toggled.connect(self._create_toggled)
        self.draw_button.clicked.connect(self._draw_clicked)
        self.undo_button.clicked.connect(lambda: self.session and self.session.undo())
        self.clear_button.clicked.connect(lambda: self.session and self.session.clear())
        self.random_button.clicked.connect(self.random_events)
        self.show_edits.toggled.connect(self._show_overlay)
        self.angle.valueChanged.connect(lambda value: self.create_tool and self.create_tool.set_angle(value))
        self.scale.valueChanged.connect(lambda value: self.create_tool and self.create_tool.set_scale(value))
        self.method.currentIndexChanged.connect(self._method_changed)
        self.unchanged.currentIndexChanged.connect(self._unchanged_changed)
        self.preview_controls.run.clicked.connect(self.preview)
        self.preview_controls.cancel.clicked.connect(self.preview_runner_cancel)
        self.export_controls.run.clicked.connect(lambda: self.export())
        self.export_controls.cancel.clicked.connect(lambda: self.export_runner.cancel())

    def _method_changed(self, *_):
        settings = load_settings()
        settings.synthesis_method = self.method.currentData()
        save_settings(settings)
        self.unchanged.setEnabled(self.method.currentData() in ("changen", "changen2"))
        self.method_hint.setText(scope_of(self.method.currentData()).description)
        self.warm_up()

    def _unchanged_changed(self, *_):
        settings = load_settings()
        settings.synthesis_unchanged = self.unchanged.currentData()
        save_settings(settings)

    def warm_up(self):
        """Load the Changen generator in the background when it is the chosen method, so the first preview does not
        wait for it (and a missing model is reported before the analyst asks for a preview)."""
        if self.method.currentData() != "changen":
            return
        settings = load_settings()
        if generator_is_cached("changen", settings.generator_model, settings.device):
            return
        self.warm_up_runner.submit(
            "Changen: loading the generator",
            warm_up_job("changen", settings.generator_model, settings.device),
        )

    def _warmed_up(self, outcome):
        if outcome.result is not None:
            log(f"Changen generator ready on {outcome.result}.")
        if outcome.error is None:
            return
        log(f"Changen generator: {outcome.error}\n{outcome.details}", Qgis.Warning)
        if self.method.currentData() == "changen":
            self.result_note.setText(f"The Changen generator is not available: {outcome.error}")

    # ------------------------------------------------------------------------------------------- inputs
    def image_layer(self) -> QgsRasterLayer:
        layer = self.image_combo.currentLayer()
        if not isinstance(layer, QgsRasterLayer):
            raise InputError("Choose the pre-event image (a raster layer) in the Synthesize tab.")
        return layer

    def buildings_layer(self) -> QgsVectorLayer:
        """The building polygons; a mask raster is vectorised once into a memory layer (ids = instance ids)."""
        layer = self.buildings_combo.currentLayer()
        if isinstance(layer, QgsVectorLayer):
            return layer
        if isinstance(layer, QgsRasterLayer):
            cached = self.mask_polygons.get(layer.id())
            if cached is not None and QgsProject.instance().mapLayer(cached.id()) is not None:
                return cached
            polygons = _mask_to_layer(layer)
            layer_io.add_layer(polygons, above=layer)
            self.mask_polygons[layer.id()] = polygons
            report(
                self.iface,
                f"The building mask '{layer.name()}' was vectorised into {polygons.featureCount()} building "
                f"polygons (layer '{polygons.name()}'); click those to edit.",
            )
            return polygons
        raise InputError("Choose a building layer: polygons, or a building mask raster.")

    def _layers_changed(self, *_):
        image, buildings = self.image_combo.currentLayer(), self.buildings_combo.currentLayer()
        chosen = (image.id() if image else None, buildings.id() if buildings else None)
        if chosen == self._chosen_layers:
            return  # the combos re-emit when other layers (e.g. a preview) are added
        self._chosen_layers = chosen
        self._reset_session()
        if image is not None and buildings is not None:
            self.warm_up()
        notes = []
        if image is not None and buildings is not None:
            note = layer_io.reprojection_note(buildings, image)
            if note:
                notes.append(note + " Edits are made in the image's CRS.")
        self.crs_note.setText(" ".join(notes))

    def _ensure_session(self) -> EditSession:
        if self.session is None:
            buildings = self.buildings_layer()
            self.session = EditSession(buildings, self.image_layer().crs())
            self.overlay = EditOverlay(self.canvas, self.session)
            self._show_overlay()
            self.session.changed.connect(self._edits_changed)
        return self.session

    def _show_overlay(self, *_):
        if self.overlay is not None:
            self.overlay.set_visible(self.show_edits.isChecked() and self.is_current_tab)

    def set_current_tab(self, current: bool) -> None:
        """The edit outlines belong to this tab: the dock hides them while another tab is shown."""
        self.is_current_tab = current
        self._show_overlay()

    def _reset_session(self):
        self._unset_tools()
        if self.overlay is not None:
            self.overlay.remove()
        self.session, self.overlay = None, None
        self._edits_changed()

    def _edits_changed(self):
        if self.session is None or self.session.empty:
            self.edit_summary.setText("No edits: use Remove / Copy on the map, or Random events.")
            return
        drawn = sum(p.source_fid is None for p in self.session.placements)
        text = f"{len(self.session.removed)} building(s) to remove, {len(self.session.placements)} to create"
        self.edit_summary.setText(text + (f" ({drawn} drawn)." if drawn else "."))

    # ------------------------------------------------------------------------------------------- map tools
    def _remove_toggled(self, checked: bool):
        if not checked:
            if self.remove_tool is not None and self.canvas.mapTool() is self.remove_tool:
                self.canvas.unsetMapTool(self.remove_tool)
            return
        try:
            session = self._ensure_session()
        except InputError as error:
            self.remove_button.setChecked(False)
            report_error(self.iface, "Remove buildings", error)
            return
        self.create_button.setChecked(False)
        if self.remove_tool is not None:
            self.remove_tool.remove_bands()
        self.remove_tool = RemoveBuildingTool(self.canvas, session)
        self.canvas.setMapTool(self.remove_tool)
        self.remove_tool.deactivated.connect(lambda: self.remove_button.setChecked(False))

    def _create_toggled(self, checked: bool):
        if not checked:
            if self.create_tool is not None and self.canvas.mapTool() is self.create_tool:
                self.canvas.unsetMapTool(self.create_tool)
            return
        try:
            session = self._ensure_session()
        except InputError as error:
            self.create_button.setChecked(False)
            report_error(self.iface, "Copy buildings", error)
            return
        self.remove_button.setChecked(False)
        if self.create_tool is not None:
            self.create_tool.remove_bands()
        self.create_tool = CreateBuildingTool(self.canvas, session)
        self.create_tool.set_angle(self.angle.value())
        self.create_tool.set_scale(self.scale.value())
        self.create_tool.source_changed.connect(self.result_note.setText)
        self.canvas.setMapTool(self.create_tool)
        self.create_tool.deactivated.connect(lambda: self.create_button.setChecked(False))
        self.result_note.setText("Click a building to copy, or Draw shape.")

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

    def close_tools(self):
        """Unset map tools and remove every canvas item and running task of this tab."""
        self._reset_session()
        self.preview_runner.cancel()
        self.export_runner.cancel()
        self.warm_up_runner.cancel()

    # ------------------------------------------------------------------------------------------- windows
    def _view_window(self, image: QgsRasterLayer) -> layer_io.PixelWindow:
        """The map view on the image; if larger than a preview allows, the edited area (with a margin)."""
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        window = layer_io.extent_window(image, self.canvas.extent(), canvas_crs)
        if max(window.width, window.height) <= PREVIEW_MAX_SIDE:
            return window
        edited = self.session.edited_extent() if self.session is not None else None
        if edited is not None:
            window = layer_io.extent_window(image, edited, image.crs())
            margin = EDIT_MARGIN_PIXELS
            window = layer_io.PixelWindow(
                max(0, window.col_off - margin),
                max(0, window.row_off - margin),
                window.width + 2 * margin,
                window.height + 2 * margin,
            )
        return layer_io.clamp_window(window, image, PREVIEW_MAX_SIDE)

    def _export_window(self, image: QgsRasterLayer) -> layer_io.PixelWindow:
        whole = layer_io.PixelWindow(0, 0, image.width(), image.height())
        if max(image.width(), image.height()) <= EXPORT_MAX_SIDE:
            return whole
        return layer_io.clamp_window(self._view_window(image), image, EXPORT_MAX_SIDE)

    # ------------------------------------------------------------------------------------------- requests
    def build_request(self, window: layer_io.PixelWindow) -> SynthesisRequest:
        """Copy everything a job needs out of layers and widgets (main thread)."""
        image = self.image_layer()
        path = layer_io.raster_path(image)
        session = self._ensure_session()
        bounds = layer_io.window_extent(image, window)
        buildings = layer_io.buildings_frame(session.layer, image.crs(), within=bounds)
        to_pixel = _PixelFrame(image, window)
        placements = [
            PlacementSpec(
                source_fid=placement.source_fid,
                vertices=to_pixel.vertices(_unplaced_shape(session, placement)),
                centre=to_pixel.row_col(placement.centre),
                angle=-placement.angle,  # map tools turn clockwise; core turns counter-clockwise
                scale=placement.scale,
            )
            for placement in session.placements
        ]
        settings = load_settings()
        return SynthesisRequest(
            image_path=path,
            window=window.to_rasterio(),
            buildings=buildings,
            remove_fids=list(session.removed),
            placements=placements,
            random_remove=self.random_remove.value(),
            random_create=self.random_create.value(),
            seed=self.seed.value(),
            steps=self.steps.value(),
            method=self.method.currentData(),
            unchanged=self.unchanged.currentData(),
            device=settings.device,
            model=settings.generator_model,
            random_in_first_step=not session.random_drawn,
        )

    def random_events(self):
        """Draw random removals and copies in the view with core's event simulation, as editable edits."""
        try:
            image = self.image_layer()
            session = self._ensure_session()
            window = self._view_window(image)
            request = self.build_request(window)
            if request.random_remove == 0 and request.random_create == 0:
                raise InputError(
                    "Set how many buildings to remove and create (Random events), then click again."
                )
            removals, creations = request.random_edits()
            if not removals and not creations:
                self._explain_no_edits(image)  # raises with the reason: layers apart, or none in the view
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Random events", error)
            return
        to_pixel = _PixelFrame(image, window)
        session.random_drawn = True
        for fid in removals:
            if fid not in session.removed:
                session.toggle_remove(fid)
        for source_fid, centre, angle, scale in creations:
            centre_point = to_pixel.map_point(centre)
            outline = _copy_outline(session, source_fid, centre_point, -angle, scale)
            session.add_placement(Placement(source_fid, outline, centre_point, -angle, scale))
        self.result_note.setText(
            f"Random events (seed {request.seed}): {len(removals)} removal(s), {len(creations)} copy(ies) marked."
        )

    def _explain_no_edits(self, image):
        buildings = self.buildings_combo.currentLayer()
        if buildings is None:
            return
        canvas = self.iface.mapCanvas()
        reason = overlap_note(image, buildings) or view_note(
            buildings, canvas.extent(), canvas.mapSettings().destinationCrs()
        )
        if reason:
            raise InputError(reason)

    # ------------------------------------------------------------------------------------------- preview
    def preview(self):
        try:
            image = self.image_layer()
            request = self.build_request(self._view_window(image))
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Preview", error)
            return None
        self._started = time.perf_counter()
        task = self.preview_runner.submit("Changen preview", preview_job(request))
        self.preview_controls.follow(task)
        self.result_note.setText(f"Synthesizing a {request.window.width}×{request.window.height} px window…")
        return task

    def preview_runner_cancel(self):
        self.preview_runner.cancel()

    def _preview_done(self, outcome):
        self.preview_controls.running(self.preview_runner.busy)
        if outcome.canceled:
            self.result_note.setText("Preview canceled.")
            return
        if outcome.error is not None:
            self.result_note.setText(report_error(self.iface, "Preview", outcome.error, outcome.details))
            return
        result = outcome.result
        self.last_preview_seconds = time.perf_counter() - self._started
        self._replace_preview(result)
        notes = "; ".join(result.notes)
        self.result_note.setText(
            f"Preview ({result.method}, {result.device}): {result.removed} removed, {result.created} created, "
            f"{self.last_preview_seconds:.1f} s." + (f" Note: {notes}" if notes else "")
        )

    def _replace_preview(self, result):
        layer_io.remove_layers(self.preview_layer_ids)
        if self.preview_dir is not None:
            _remove_dir(self.preview_dir)
        image = self.image_combo.currentLayer()
        raster = QgsRasterLayer(result.post_path, PREVIEW_LAYER_NAME)
        layer_io.add_layer(raster, above=image)
        outlines = _polygons_layer(result.polygons, result.crs_wkt, OUTLINE_LAYER_NAME)
        layer_io.style_outline(outlines, "255,0,255,255")
        layer_io.add_layer(outlines, above=raster)
        self.preview_layer_ids = [raster.id(), outlines.id()]
        self.preview_dir = result.folder

    def discard_preview(self):
        layer_io.remove_layers(self.preview_layer_ids)
        self.preview_layer_ids = []
        if self.preview_dir is not None:
            _remove_dir(self.preview_dir)
            self.preview_dir = None

    # ------------------------------------------------------------------------------------------- export
    def export(self, folder: str | None = None):
        settings = load_settings()
        try:  # the inputs first: no folder dialog for an export that cannot run
            image = self.image_layer()
            request = self.build_request(self._export_window(image))
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Export", error)
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(
                self,
                "Export the synthetic change pair into…",
                settings.last_export_folder or os.path.expanduser("~"),
            )
            if not folder:
                return None
        settings.last_export_folder = folder
        save_settings(settings)
        task = self.export_runner.submit("Changen export", export_job(request, folder, image.name()))
        self.export_controls.follow(task)
        self.result_note.setText(f"Exporting a {request.window.width}×{request.window.height} px pair…")
        return task

    def _export_done(self, outcome):
        self.export_controls.running(self.export_runner.busy)
        if outcome.canceled:
            self.result_note.setText("Export canceled: nothing was written.")
            return
        if outcome.error is not None:
            self.result_note.setText(report_error(self.iface, "Export", outcome.error, outcome.details))
            return
        result = outcome.result
        group = layer_io.result_group(f"Changen export: {os.path.basename(result.folder)}")
        polygons = QgsVectorLayer(result.polygons_path, "change polygons", "ogr")
        layer_io.style_outline(polygons, "255,0,255,255")
        layer_io.add_layer(polygons, group=group)
        last = len(result.images) - 1
        for t in range(last, 0, -1):
            change = layer_io.add_layer(
                QgsRasterLayer(result.changes[t - 1], f"change t{t - 1}→t{t}"), group=group
            )
            layer_io.style_probability(change)
            group.findLayer(change.id()).setItemVisibilityChecked(t == last)
        for t in range(last, -1, -1):
            image = layer_io.add_layer(QgsRasterLayer(result.images[t], f"image t{t}"), group=group)
            group.findLayer(image.id()).setItemVisibilityChecked(t == last)
        for t in range(last, -1, -1):
            mask = layer_io.add_layer(QgsRasterLayer(result.masks[t], f"building mask t{t}"), group=group)
            group.findLayer(mask.id()).setItemVisibilityChecked(False)
        rasters = 3 * len(result.images) - 1
        report(
            self.iface,
            f"Exported {rasters} GeoTIFFs, {result.polygon_count} change polygons and the event log to "
            f"{result.folder}.",
        )
        self.result_note.setText(f"Exported to {result.folder}")


# ----------------------------------------------------------------------------------------------- helpers
class _PixelFrame:
    """Map coordinates (image CRS) ↔ (row, col) of a window of the image."""

    def __init__(self, image: QgsRasterLayer, window: layer_io.PixelWindow):
        full = image.extent()
        self.pixel_w = full.width() / image.width()
        self.pixel_h = full.height() / image.height()
        self.left = full.xMinimum() + window.col_off * self.pixel_w
        self.top = full.yMaximum() - window.row_off * self.pixel_h

    def row_col(self, point) -> tuple[float, float]:
        return ((self.top - point.y()) / self.pixel_h - 0.5, (point.x() - self.left) / self.pixel_w - 0.5)

    def map_point(self, row_col):
        row, col = row_col
        return QgsPointXY(self.left + (col + 0.5) * self.pixel_w, self.top - (row + 0.5) * self.pixel_h)

    def vertices(self, geometry: QgsGeometry) -> tuple:
        ring = geometry.asPolygon()[0] if not geometry.isMultipart() else geometry.asMultiPolygon()[0][0]
        return tuple(self.row_col(point) for point in ring)


def _unplaced_shape(session: EditSession, placement: Placement) -> QgsGeometry:
    """The shape a placement copies, before rotation and scaling (work CRS)."""
    if placement.source_fid is not None:
        return session.geometry(placement.source_fid)
    undo = QgsGeometry(placement.outline)
    undo.rotate(-placement.angle, placement.centre)
    return placed_outline(undo, placement.centre, 0.0, 1.0 / placement.scale)


def _copy_outline(session, source_fid, centre, angle, scale) -> QgsGeometry:
    return placed_outline(session.geometry(source_fid), centre, angle, scale)


def _polygons_layer(frame, crs_wkt: str, name: str) -> QgsVectorLayer:
    """A memory layer from a GeoDataFrame (attributes: event_type, step, area_m2)."""
    layer = QgsVectorLayer("MultiPolygon", name, "memory")
    layer.setCrs(QgsCoordinateReferenceSystem.fromWkt(crs_wkt))
    provider = layer.dataProvider()
    provider.addAttributes(
        [
            QgsField("event_type", QVariant.String),
            QgsField("step", QVariant.Int),
            QgsField("area_m2", QVariant.Double),
        ]
    )
    layer.updateFields()
    features = []
    for record in frame.itertuples():
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(record.geometry.wkt))
        feature.setAttributes([record.event_type, int(record.step), float(record.area_m2)])
        features.append(feature)
    provider.addFeatures(features)
    layer.updateExtents()
    return layer


def _mask_to_layer(mask_layer: QgsRasterLayer) -> QgsVectorLayer:
    """Vectorise a building mask raster into a memory layer whose feature ids are its instance ids."""
    from ..core.io.labels import instances_to_polygons, load_state

    state, grid, _ = load_state(layer_io.raster_path(mask_layer))
    frame = instances_to_polygons(state.instance, grid)
    layer = QgsVectorLayer("MultiPolygon", f"buildings from {mask_layer.name()}", "memory")
    layer.setCrs(mask_layer.crs())
    layer.dataProvider().addAttributes([QgsField("instance_id", QVariant.Int)])
    layer.updateFields()
    features = []
    for record in frame.itertuples():
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(record.geometry.wkt))
        feature.setAttributes([int(record.instance_id)])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    layer_io.style_outline(layer, "255,200,0,255", 0.4)
    return layer


def _remove_dir(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _remove_dir_of(result) -> None:
    folder = getattr(result, "folder", None)
    if folder:
        _remove_dir(folder)
