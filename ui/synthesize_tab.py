"""The Synthesize tab: pick layers, edit buildings on the map, preview a synthesized post-event image, export."""

import os
import time

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsVectorLayer, QgsWkbTypes
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from ..core.errors import InputError
from ..plugin import layers as layer_io
from ..plugin.generators import generator_is_cached, warm_up_job
from ..plugin.map_tools import Placement
from ..plugin.results import remove_folder, remove_result_folder
from ..plugin.settings import load_settings
from ..plugin.synthesis_jobs import (
    PlacementSpec,
    SynthesisRequest,
    export_job,
    preview_job,
)
from ..plugin.tasks import LatestRequestRunner
from .building_masks import BuildingMasks
from .edit_panel import EditPanel, copy_outline, unplaced_shape
from .messages import log, report, report_error
from .pair_notes import overlap_note, view_note
from .synthesis_options import SynthesisOptions
from .widgets import RunControls, choose_export_folder

PREVIEW_MAX_SIDE = 1024
EXPORT_MAX_SIDE = 4096
EDIT_MARGIN_PIXELS = 96
PREVIEW_LAYER_NAME = "post-event preview"  # both temporary: "(temporary)" is added to the names
OUTLINE_LAYER_NAME = "preview change outlines"


class SynthesizeTab(QWidget):
    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.setObjectName("ChangenSynthesizeTab")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.preview_layer_ids: list[str] = []
        self.preview_dir: str | None = None
        self.last_preview_seconds: float | None = None
        self._started = 0.0
        self._chosen_layers = None
        self._build()
        self.preview_runner = LatestRequestRunner(
            self._preview_done, discard=remove_result_folder, owner=self
        )
        self.export_runner = LatestRequestRunner(self._export_done, discard=remove_result_folder, owner=self)
        self.warm_up_runner = LatestRequestRunner(self._warmed_up, owner=self)
        self.masks = BuildingMasks(iface, self.result_note.setText, self)
        self.image_combo.layerChanged.connect(self._layers_changed)
        self.buildings_combo.layerChanged.connect(self._layers_changed)
        self._buildings_chosen = False
        self.buildings_combo.activated.connect(self._buildings_picked)
        QgsProject.instance().layersAdded.connect(self._building_candidates_changed)
        self._building_candidates_changed()
        self._layers_changed()

    def _buildings_picked(self, _index):
        self._buildings_chosen = True

    def _building_candidates_changed(self, *_):
        """Buildings are polygons or a single-band mask/label raster: an RGB image is never offered (vectorising
        one made 770,551 "buildings"). Until the user chooses, a polygon layer is preferred."""
        project_layers = QgsProject.instance().mapLayers().values()
        self.buildings_combo.setExceptedLayerList(
            [
                layer
                for layer in project_layers
                if isinstance(layer, QgsRasterLayer) and not layer_io.is_label_raster(layer)
            ]
        )
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
        self.buildings_combo.setToolTip(
            "Building footprints (polygons) or a single-band building mask / label raster, any CRS."
        )
        inputs.addRow("Buildings", self.buildings_combo)
        self.crs_note = QLabel()
        self.crs_note.setObjectName("ChangenCrsNote")
        self.crs_note.setWordWrap(True)
        inputs.addRow(self.crs_note)
        layout.addLayout(inputs)

        self.edits = EditPanel(
            self.iface,
            lambda: (self.buildings_layer(), self.image_layer().crs()),
            lambda text: self.result_note.setText(text),
        )
        layout.addWidget(self.edits)

        self.options = SynthesisOptions()
        layout.addWidget(self.options)
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

        self.options.random_button.clicked.connect(self.random_events)
        self.options.method.currentIndexChanged.connect(self.warm_up)
        self.preview_controls.run.clicked.connect(self.preview)
        self.preview_controls.cancel.clicked.connect(self.preview_runner_cancel)
        self.export_controls.run.clicked.connect(lambda: self.export())
        self.export_controls.cancel.clicked.connect(lambda: self.export_runner.cancel())

    def warm_up(self, *_):
        """Load the Changen generator in the background when it is the chosen method, so the first preview does not
        wait for it (and a missing model is reported before the analyst asks for a preview)."""
        if self.options.method.currentData() != "changen":
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
        if self.options.method.currentData() == "changen":
            self.result_note.setText(f"The Changen generator is not available: {outcome.error}")

    # ------------------------------------------------------------------------------------------- inputs
    def image_layer(self) -> QgsRasterLayer:
        layer = self.image_combo.currentLayer()
        if not isinstance(layer, QgsRasterLayer):
            raise InputError("Choose the pre-event image (a raster layer) in the Synthesize tab.")
        return layer

    def buildings_layer(self) -> QgsVectorLayer:
        """The building polygons; a mask raster is vectorised once, in the background (ids = instance ids)."""
        layer = self.buildings_combo.currentLayer()
        if isinstance(layer, QgsVectorLayer):
            return layer
        if isinstance(layer, QgsRasterLayer):
            polygons = self.masks.polygons_of(layer)
            if polygons is not None:
                return polygons
            raise InputError(
                f"The building mask '{layer.name()}' is being turned into polygons in the background (progress "
                "in the note below): click again when it is done."
            )
        raise InputError("Choose a building layer: polygons, or a single-band building mask raster.")

    def _layers_changed(self, *_):
        image, buildings = self.image_combo.currentLayer(), self.buildings_combo.currentLayer()
        chosen = (image.id() if image else None, buildings.id() if buildings else None)
        if chosen == self._chosen_layers:
            return  # the combos re-emit when other layers (e.g. a preview) are added
        self._chosen_layers = chosen
        self.edits.reset()
        if isinstance(buildings, QgsRasterLayer) and buildings.id() not in self.masks.polygons:
            try:
                self.masks.vectorise(buildings)
            except InputError as error:  # not a local file: say how to get one
                self.result_note.setText(str(error))
        else:
            self.masks.runner.cancel()
        if image is not None and buildings is not None:
            self.warm_up()
        notes = []
        if image is not None and buildings is not None:
            note = layer_io.reprojection_note(buildings, image)
            if note:
                notes.append(note + " Edits are made in the image's CRS.")
        self.crs_note.setText(" ".join(notes))

    def set_current_tab(self, current: bool) -> None:
        """The dock hides this tab's edit outlines while another tab is shown."""
        self.edits.set_current_tab(current)

    def close_tools(self):
        """Unset map tools and remove every canvas item, running task and temporary preview of this tab."""
        self.edits.reset()
        self.preview_runner.cancel()
        self.export_runner.cancel()
        self.warm_up_runner.cancel()
        self.masks.close()
        self.discard_preview()

    # ------------------------------------------------------------------------------------------- windows
    def _view_window(self, image: QgsRasterLayer) -> layer_io.PixelWindow:
        """The map view on the image; if larger than a preview allows, the edited area (with a margin)."""
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        window = layer_io.extent_window(image, self.canvas.extent(), canvas_crs)
        if max(window.width, window.height) <= PREVIEW_MAX_SIDE:
            return window
        edited = self.edits.session.edited_extent() if self.edits.session is not None else None
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
        session = self.edits.ensure_session()
        bounds = layer_io.window_extent(image, window)
        buildings = layer_io.buildings_frame(session.layer, image.crs(), within=bounds)
        to_pixel = layer_io.PixelFrame(image, window)
        placements = [
            PlacementSpec(
                source_fid=placement.source_fid,
                vertices=to_pixel.vertices(unplaced_shape(session, placement)),
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
            random_remove=self.options.random_remove.value(),
            random_create=self.options.random_create.value(),
            seed=self.options.seed.value(),
            steps=self.options.steps.value(),
            method=self.options.method.currentData(),
            unchanged=self.options.unchanged.currentData(),
            device=settings.device,
            model=settings.generator_model,
            random_in_first_step=not session.random_drawn,
        )

    def random_events(self):
        """Draw random removals and copies in the view with core's event simulation, as editable edits."""
        try:
            image = self.image_layer()
            session = self.edits.ensure_session()
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
        to_pixel = layer_io.PixelFrame(image, window)
        session.random_drawn = True
        for fid in removals:
            if fid not in session.removed:
                session.toggle_remove(fid)
        for source_fid, centre, angle, scale in creations:
            centre_point = to_pixel.map_point(centre)
            outline = copy_outline(session, source_fid, centre_point, -angle, scale)
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
            remove_folder(self.preview_dir)
        image = self.image_combo.currentLayer()
        raster = QgsRasterLayer(result.post_path, PREVIEW_LAYER_NAME)
        layer_io.add_temporary_layer(raster, above=image)
        outlines = layer_io.change_polygons_layer(result.polygons, result.crs_wkt, OUTLINE_LAYER_NAME)
        layer_io.style_outline(outlines, "255,0,255,255")
        layer_io.add_temporary_layer(outlines, above=raster)
        self.preview_layer_ids = [raster.id(), outlines.id()]
        self.preview_dir = result.folder

    def discard_preview(self):
        layer_io.remove_layers(self.preview_layer_ids)
        self.preview_layer_ids = []
        if self.preview_dir is not None:
            remove_folder(self.preview_dir)
            self.preview_dir = None

    # ------------------------------------------------------------------------------------------- export
    def export(self, folder: str | None = None):
        try:  # the inputs first: no folder dialog for an export that cannot run
            image = self.image_layer()
            request = self.build_request(self._export_window(image))
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Export", error)
            return None
        folder = choose_export_folder(self, "Export the synthetic change pair into…", folder)
        if folder is None:
            return None
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
        layer_io.add_export_layers(result, f"Changen export: {os.path.basename(result.folder)}")
        rasters = 3 * len(result.images) - 1
        report(
            self.iface,
            f"Exported {rasters} GeoTIFFs, {result.polygon_count} change polygons and the event log to "
            f"{result.folder}.",
        )
        self.result_note.setText(f"Exported to {result.folder}")
