"""Building mask rasters turned into clickable polygons, once per mask and in the background (issue 16, item 9)."""

from qgis.core import QgsProject, QgsRasterLayer

from ..plugin import layers as layer_io
from ..plugin.results import remove_folder, remove_result_folder
from ..plugin.synthesis_jobs import vectorise_mask_job
from ..plugin.tasks import LatestRequestRunner
from .messages import report, report_error


class BuildingMasks:
    """Vectorises mask layers in a task and keeps their temporary polygon layers; `note(text)` shows progress."""

    def __init__(self, iface, note, owner):
        self.iface, self.note = iface, note
        # mask layer id -> (the id of its building polygons layer, their temporary folder)
        self.polygons: dict[str, tuple[str, str]] = {}
        self.vectorising: str | None = None  # the mask layer id of the running vectorisation
        self.runner = LatestRequestRunner(self._vectorised, discard=remove_result_folder, owner=owner)

    def polygons_of(self, mask: QgsRasterLayer):
        """The mask's polygon layer, or None (then a vectorisation is running or has been started)."""
        polygons_id, _ = self.polygons.get(mask.id(), ("", ""))
        polygons = QgsProject.instance().mapLayer(polygons_id)
        if polygons is None and (self.vectorising != mask.id() or not self.runner.busy):
            self.vectorise(mask)
        return polygons

    def vectorise(self, mask: QgsRasterLayer):
        """Start turning `mask` into building polygons; the layer is added when the task is done."""
        path = layer_io.raster_path(mask)
        self.vectorising = mask.id()
        task = self.runner.submit(f"Changen: buildings from {mask.name()}", vectorise_mask_job(path))
        task.progressChanged.connect(self.progress)  # a bound method: disconnected when the owner is deleted
        self.progress(0.0)
        return task

    def progress(self, value: float):
        mask = QgsProject.instance().mapLayer(self.vectorising or "")
        if mask is not None:
            self.note(f"Turning the building mask '{mask.name()}' into polygons: {value:.0f} %")

    def _vectorised(self, outcome):
        mask = QgsProject.instance().mapLayer(self.vectorising or "")
        if outcome.canceled:
            return
        if outcome.error is not None:
            self.note(report_error(self.iface, "Building mask", outcome.error, outcome.details))
            return
        result = outcome.result
        if mask is None:  # removed from the project meanwhile
            remove_folder(result.folder)
            return
        polygons = layer_io.add_temporary_layer(layer_io.mask_buildings_layer(result, mask), above=mask)
        self.polygons[mask.id()] = (polygons.id(), result.folder)
        text = (
            f"The building mask '{mask.name()}' was vectorised into {result.count} building polygons (layer "
            f"'{polygons.name()}'); click those to edit."
        )
        self.note(text)
        report(self.iface, text)

    def close(self):
        """Cancel the running vectorisation and remove every polygon layer and folder made here."""
        self.runner.cancel()
        layer_io.remove_layers([polygons_id for polygons_id, _ in self.polygons.values()])
        for _, folder in self.polygons.values():
            remove_folder(folder)
        self.polygons = {}
