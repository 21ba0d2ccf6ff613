"""Processing: "Synthesize change pair" — simulate building change events and synthesize the post-event images."""

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..core.errors import InputError
from ..core.synthesis.methods import METHOD_INFO, METHODS, UNCHANGED_LABELS, UNCHANGED_MODES
from .algorithms import ChangenAlgorithm, load_raster_on_completion, progress_callbacks


def removal_amount(value: float) -> int | float:
    """A whole number is a count of buildings, anything else a fraction of them (as core's `remove`)."""
    if value < 0:
        raise InputError(f"Buildings removed per step must be 0 or more, got {value}.")
    if float(value).is_integer():
        return int(value)
    if value > 1:
        raise InputError(
            f"Buildings removed per step: use a whole count (e.g. 3) or a fraction below 1, got {value}."
        )
    return float(value)


def load_buildings(layer, image_layer, grid, feedback):
    """core's building state on the image grid, from a polygon layer (any CRS) or a building mask raster."""
    from ..core.io.labels import load_state, polygons_to_state
    from .layers import buildings_frame, raster_path, reprojection_note

    if isinstance(layer, QgsVectorLayer):
        note = reprojection_note(layer, image_layer)
        if note:
            feedback.pushInfo(note)
        frame = buildings_frame(layer, image_layer.crs(), within=image_layer.extent())
        if frame.empty:
            raise InputError(f"No building polygon of '{layer.name()}' lies on '{image_layer.name()}'.")
        return polygons_to_state(frame, grid, id_field="fid").state
    if isinstance(layer, QgsRasterLayer):
        state, _, _ = load_state(raster_path(layer), grid=grid)
        return state
    raise InputError("Choose a polygon layer of buildings or a building mask raster for 'Buildings'.")


class SynthesizeChangePair(ChangenAlgorithm):
    NAME = "synthesize"
    DISPLAY_NAME = "Synthesize change pair"
    GROUP = "Synthesis"
    HELP = (
        "Simulates change events on the buildings of a pre-event image (some removed, copies of others created, "
        "over T time steps) and synthesizes the image after each step with the Changen generator or a baseline "
        "(Copy-Paste: creation only; Inpainting: removal only).<br>"
        "Changen, unchanged pixels: <i>keep</i> (default) leaves the image as it was outside the change and blends "
        "the generated, colour-corrected pixels into a slightly grown change region; <i>regenerate</i> lets the "
        "generator redraw the whole image (the paper's design: more varied training data, but the scene's colours "
        "and texture change everywhere). The baselines always keep the unchanged pixels.<br>"
        "Buildings: a polygon layer in any CRS (reprojected onto the image) or a building mask raster on the "
        "image's grid.<br>"
        "Writes into the output folder, as GeoTIFFs on the image's grid: image_t0…image_tT, mask_t0…mask_tT "
        "(building classes) and change_t1…change_tT (1 = changed since the step before), plus events.json "
        "(every event, seed, method and device). The same seed gives the same result."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Pre-event image"))
        self.addParameter(
            QgsProcessingParameterMapLayer(
                "BUILDINGS",
                "Buildings (polygons, or a building mask raster on the image grid)",
                types=[QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeRaster],
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "METHOD",
                "Synthesis method",
                options=[METHOD_INFO[name].label for name in METHODS],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "UNCHANGED",
                "Changen: pixels outside the change",
                options=[UNCHANGED_LABELS[mode] for mode in UNCHANGED_MODES],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "STEPS", "Time steps T", QgsProcessingParameterNumber.Integer, defaultValue=1, minValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "REMOVE",
                "Buildings removed per step (a count, or a fraction below 1)",
                QgsProcessingParameterNumber.Double,
                defaultValue=0.3,
                minValue=0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "CREATE",
                "Buildings created per step (copies of existing ones)",
                QgsProcessingParameterNumber.Integer,
                defaultValue=3,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED", "Random seed", QgsProcessingParameterNumber.Integer, defaultValue=0
            )
        )
        self.add_advanced(
            QgsProcessingParameterBand(
                "BANDS",
                "Bands (red, green, blue)",
                parentLayerParameterName="INPUT",
                optional=True,
                allowMultiple=True,
            )
        )
        self.add_advanced(
            QgsProcessingParameterString(
                "MODEL", "Generator (shipped model name or .safetensors path; empty = default)", optional=True
            )
        )
        self.add_device_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("POST_IMAGE", "Post-event image (last step)"))
        self.addOutput(QgsProcessingOutputRasterLayer("CHANGE", "Change mask (last step)"))
        self.addOutput(QgsProcessingOutputFile("EVENT_LOG", "Event log (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("REMOVED", "Buildings removed"))
        self.addOutput(QgsProcessingOutputNumber("CREATED", "Buildings created"))

    def run_algorithm(self, parameters, context, feedback):
        import numpy as np

        from ..core.events.series import simulate_series
        from ..core.io.rasters import raster_grid, read_raster
        from ..core.synthesis.synthesize import synthesize, write_result
        from .layers import raster_path, style_probability

        image_layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        image_path = raster_path(image_layer)
        buildings = self.parameterAsLayer(parameters, "BUILDINGS", context)
        method = METHODS[self.parameterAsEnum(parameters, "METHOD", context)]
        unchanged = UNCHANGED_MODES[self.parameterAsEnum(parameters, "UNCHANGED", context)]
        steps = self.parameterAsInt(parameters, "STEPS", context)
        remove = removal_amount(self.parameterAsDouble(parameters, "REMOVE", context))
        create = self.parameterAsInt(parameters, "CREATE", context)
        seed = self.parameterAsInt(parameters, "SEED", context)
        bands = self.parameterAsInts(parameters, "BANDS", context) or None
        if bands is not None and len(bands) != 3:
            raise InputError(f"Choose exactly three bands (red, green, blue), not {len(bands)}.")
        model = self.parameterAsString(parameters, "MODEL", context).strip() or None
        out = Path(self.parameterAsString(parameters, "OUTPUT", context))

        grid = raster_grid(image_path)
        image = read_raster(image_path, bands=bands)
        state = load_buildings(buildings, image_layer, grid, feedback)
        progress, is_canceled = progress_callbacks(feedback, 0, 10)
        series = simulate_series(state, seed, steps, progress=progress, remove=remove, create=create)
        progress, is_canceled = progress_callbacks(feedback, 10, 95)
        result = synthesize(
            image,
            state,
            series,
            method=method,
            device=self.device(parameters, context),
            rng=np.random.default_rng([seed, 1]),
            progress=progress,
            is_canceled=is_canceled,
            generator=model,
            unchanged=unchanged,
        )
        feedback.pushInfo(
            f"{method} ({result.log['unchanged']} unchanged) on {result.log['device']}, seconds per step: {result.log['seconds_per_step']}"
        )
        write_result(result, grid, out)
        feedback.setProgress(100)
        events = [event for step in series.steps for event in step.events]
        post_image, change = out / f"image_t{steps}.tif", out / f"change_t{steps}.tif"
        title = f"{image_layer.name()}, {method}, t{steps}"
        load_raster_on_completion(context, post_image, f"Changen post-event ({title})", "POST_IMAGE")
        load_raster_on_completion(context, change, f"Changen change ({title})", "CHANGE", style_probability)
        return {
            "OUTPUT": str(out),
            "POST_IMAGE": str(post_image),
            "CHANGE": str(change),
            "EVENT_LOG": str(out / "events.json"),
            "REMOVED": sum(event.kind == "remove" for event in events),
            "CREATED": sum(event.kind == "create" for event in events),
        }
