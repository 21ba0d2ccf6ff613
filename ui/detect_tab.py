"""The Detect tab: a change-probability raster and change polygons from a real t1/t2 image pair."""

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QCheckBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from ..core.errors import InputError
from ..plugin import layers as layer_io
from ..plugin.detect_jobs import DetectRequest, detect_job
from ..plugin.results import results_folder
from ..plugin.settings import load_settings, save_settings
from ..plugin.tasks import LatestRequestRunner
from .messages import report, report_error
from .pair_notes import grid_note
from .widgets import RunControls, double_spin


class DetectTab(QWidget):
    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.setObjectName("ChangenDetectTab")
        self.iface = iface
        # a run replaced by a newer one (never shown) leaves no folder behind
        self.runner = LatestRequestRunner(self._done, discard=_remove_folder, owner=self)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.t1_combo = QgsMapLayerComboBox()
        self.t1_combo.setObjectName("ChangenT1")
        self.t1_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        form.addRow("Image t1 (before)", self.t1_combo)
        self.t2_combo = QgsMapLayerComboBox()
        self.t2_combo.setObjectName("ChangenT2")
        self.t2_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        form.addRow("Image t2 (after)", self.t2_combo)
        self.model_label = QLabel()
        self.model_label.setObjectName("ChangenDetectorModel")
        self.model_label.setWordWrap(True)
        form.addRow("Model", self.model_label)
        settings = load_settings()
        self.threshold = double_spin(
            0.0,
            0.95,
            settings.detect_threshold,
            0.05,
            "ChangenThreshold",
            tip="Change probability above which a pixel counts as changed (higher: fewer false alarms, more "
            "misses). 'calibrated' uses the threshold stored with the model.",
        )
        self.threshold.setSpecialValueText("calibrated")
        form.addRow("Threshold", self.threshold)
        self.view_only = QCheckBox("Only the current map view")
        self.view_only.setObjectName("ChangenDetectViewOnly")
        form.addRow(self.view_only)
        layout.addLayout(form)
        self.controls = RunControls("Detect changes", "ChangenDetect")
        layout.addWidget(self.controls)
        self.note = QLabel()
        self.note.setObjectName("ChangenDetectNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        layout.addStretch(1)
        self.controls.run.clicked.connect(self.detect)
        self.controls.cancel.clicked.connect(self.runner.cancel)
        self.t1_combo.layerChanged.connect(self._explain_pair)
        self.t2_combo.layerChanged.connect(self._explain_pair)
        self.refresh_model()
        self._explain_pair()

    def refresh_model(self):
        name = load_settings().detector_model
        self.model_label.setText(name or "default shipped detector (change it in Settings…)")

    def _explain_pair(self, *_):
        t1, t2 = self.t1_combo.currentLayer(), self.t2_combo.currentLayer()
        if t1 is None or t2 is None:
            self.note.setText("Choose the two dates.")
        elif t1.id() == t2.id():
            self.note.setText("t1 and t2 are the same layer: choose the other date for t2.")
        elif grid_note(t1, t2):
            self.note.setText(grid_note(t1, t2))  # says what differs: CRS, pixel size, origin, size
        else:
            self.note.setText("t1 and t2 share one grid.")

    def build_request(self) -> DetectRequest:
        t1, t2 = self.t1_combo.currentLayer(), self.t2_combo.currentLayer()
        if not isinstance(t1, QgsRasterLayer) or not isinstance(t2, QgsRasterLayer):
            raise InputError("Choose the t1 and t2 raster layers in the Detect tab.")
        if t1.id() == t2.id():
            raise InputError("t1 and t2 are the same layer: choose the later image as t2.")
        window = None
        if self.view_only.isChecked():
            canvas = self.iface.mapCanvas()
            window = layer_io.extent_window(t1, canvas.extent(), canvas.mapSettings().destinationCrs())
        settings = load_settings()
        settings.detect_threshold = self.threshold.value()
        save_settings(settings)
        return DetectRequest(
            t1_path=layer_io.raster_path(t1),
            t2_path=layer_io.raster_path(t2),
            model=settings.detector_model,
            threshold=self.chosen_threshold(),
            device=settings.device,
            folder=results_folder(),
            name=f"changen_detect_{t1.name()}_{t2.name()}",
            window=None if window is None else window.to_rasterio(),
        )

    def chosen_threshold(self) -> float | None:
        """None (the model's calibrated threshold) at the spin box's minimum."""
        value = self.threshold.value()
        return None if value <= self.threshold.minimum() else value

    def detect(self):
        try:
            request = self.build_request()
        except Exception as error:  # noqa: BLE001 (reported to the analyst)
            report_error(self.iface, "Detect", error)
            return None
        t1, t2 = self.t1_combo.currentLayer(), self.t2_combo.currentLayer()
        self._pair_names = (t1.name(), t2.name())  # the result group names both dates as they were at the run
        task = self.runner.submit("Changen change detection", detect_job(request))
        self.controls.follow(task)
        self.note.setText("Detecting changes…")
        return task

    def _done(self, outcome):
        self.controls.running(self.runner.busy)
        if outcome.canceled:
            self.note.setText("Detection canceled.")
            return
        if outcome.error is not None:
            self.note.setText(report_error(self.iface, "Detect", outcome.error, outcome.details))
            return
        result = outcome.result
        t1_name, t2_name = getattr(self, "_pair_names", ("t1", "t2"))
        group = layer_io.result_group(f"Changen detection: {t1_name} → {t2_name}")  # on top of both dates
        polygons = QgsVectorLayer(result.polygons_path, "change polygons", "ogr")
        layer_io.style_outline(polygons, "255,0,0,255", 0.7)
        layer_io.add_layer(polygons, group=group)
        probability = QgsRasterLayer(result.probability_path, "change probability")
        layer_io.add_layer(probability, group=group)
        layer_io.style_probability(probability)
        summary = (
            f"Changed area {result.changed_area_m2:,.0f} m² in {result.polygon_count} polygon(s), "
            f"{result.seconds:.1f} s on {result.device} (threshold {result.threshold:.2f})."
        )
        if result.notes:
            summary += " " + " ".join(result.notes)
        summary += f" Results in {result.folder}."
        self.note.setText(summary)
        report(self.iface, summary)

    def close_tools(self):
        self.runner.cancel()


def _remove_folder(result) -> None:
    import shutil

    shutil.rmtree(result.folder, ignore_errors=True)
