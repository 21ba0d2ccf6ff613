"""Processing: "Detect changes" — ChangeStar change detection between two rasters (core.detect.detect_change)."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..core.errors import InputError
from ..core.paths import DEFAULT_DETECTOR
from .algorithms import ChangenAlgorithm, progress_callbacks, style_when_loaded


def three_bands(values: list[int], label: str) -> list[int] | None:
    if not values:
        return None
    if len(values) != 3:
        raise InputError(f"{label}: choose exactly three bands (red, green, blue), not {len(values)}.")
    return list(values)


def _area_text(result) -> str:
    if result.changed_area_m2 is None:  # a plain image: no CRS, the area is in pixels
        return f"{result.changed_area:.6g} px² (no CRS)"
    return f"{result.changed_area_m2:,.1f} m², ellipsoidal"


class DetectChanges(ChangenAlgorithm):
    NAME = "detect"
    DISPLAY_NAME = "Detect changes"
    GROUP = "Detection"
    HELP = (
        "Detects changes between an earlier (t1) and a later (t2) image with a ChangeStar detector trained on "
        "synthetic change pairs, tile by tile, so rasters of any size fit in memory.<br>"
        "When t2's CRS, resolution or extent differ from t1's, t2 is resampled onto t1's grid (the log says "
        "so); pixels without data in either date get the no-data value 255.<br>"
        "Outputs: a change mask on t1's grid (1 = change, 0 = no change), optionally the change probability "
        "(0–1) and change polygons with their area (GeoPackage). The threshold defaults to the model's own."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("T1", "Earlier image (t1)"))
        self.addParameter(QgsProcessingParameterRasterLayer("T2", "Later image (t2)"))
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                "Threshold (empty = the model's)",
                QgsProcessingParameterNumber.Double,
                optional=True,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "MODEL", "Detector (shipped model name or .safetensors path)", defaultValue=DEFAULT_DETECTOR
            )
        )
        for name, label, parent in (("BANDS_T1", "Bands of t1", "T1"), ("BANDS_T2", "Bands of t2", "T2")):
            self.add_advanced(
                QgsProcessingParameterBand(
                    name,
                    f"{label} (red, green, blue)",
                    parentLayerParameterName=parent,
                    optional=True,
                    allowMultiple=True,
                )
            )
        self.add_advanced(
            QgsProcessingParameterNumber(
                "TILE",
                "Tile size (pixels)",
                QgsProcessingParameterNumber.Integer,
                defaultValue=512,
                minValue=64,
            )
        )
        self.add_advanced(
            QgsProcessingParameterNumber(
                "OVERLAP",
                "Tile overlap (pixels)",
                QgsProcessingParameterNumber.Integer,
                defaultValue=64,
                minValue=0,
            )
        )
        self.add_device_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Change mask"))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "PROBABILITY", "Change probability", optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                "POLYGONS",
                "Change polygons (GeoPackage)",
                type=QgsProcessing.TypeVectorPolygon,
                optional=True,
                createByDefault=False,
            )
        )
        self.addOutput(QgsProcessingOutputNumber("CHANGED_PIXELS", "Changed pixels"))
        self.addOutput(QgsProcessingOutputNumber("CHANGED_AREA", "Changed area (m², ellipsoidal)"))
        self.addOutput(QgsProcessingOutputNumber("POLYGON_COUNT", "Change polygons"))
        self.addOutput(QgsProcessingOutputNumber("THRESHOLD_USED", "Threshold used"))

    def run_algorithm(self, parameters, context, feedback):
        from ..core.detection.inference import detect_change
        from .layers import raster_path

        t1 = raster_path(self.parameterAsRasterLayer(parameters, "T1", context))
        t2 = raster_path(self.parameterAsRasterLayer(parameters, "T2", context))
        threshold = None
        if parameters.get("THRESHOLD") not in (None, ""):
            threshold = self.parameterAsDouble(parameters, "THRESHOLD", context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        probability = self.parameterAsOutputLayer(parameters, "PROBABILITY", context) or None
        polygons = self.parameterAsOutputLayer(parameters, "POLYGONS", context) or None
        progress, is_canceled = progress_callbacks(feedback)
        result = detect_change(
            t1,
            t2,
            output,
            probability_path=probability,
            vector_path=polygons,
            threshold=threshold,
            model=self.parameterAsString(parameters, "MODEL", context).strip() or DEFAULT_DETECTOR,
            bands=three_bands(self.parameterAsInts(parameters, "BANDS_T1", context), "Bands of t1"),
            bands_t2=three_bands(self.parameterAsInts(parameters, "BANDS_T2", context), "Bands of t2"),
            device=self.device(parameters, context),
            tile=self.parameterAsInt(parameters, "TILE", context),
            overlap=self.parameterAsInt(parameters, "OVERLAP", context),
            progress=progress,
            is_canceled=is_canceled,
        )
        from .layers import style_outline, style_probability

        style_when_loaded(context, probability, style_probability)
        style_when_loaded(context, polygons, lambda layer: style_outline(layer, "#e31a1c"))
        for note in result.notes:
            feedback.pushInfo(note)
        feedback.pushInfo(
            f"{result.changed_pixels} changed pixels ({_area_text(result)}) at threshold "
            f"{result.threshold:.2f}, {result.polygons} polygons; {result.tiles} tiles "
            f"({result.skipped_tiles} without data), {result.device}, {result.seconds:.1f} s"
        )
        results = {
            "OUTPUT": str(result.change_path),
            "CHANGED_PIXELS": result.changed_pixels,
            "CHANGED_AREA": result.changed_area if result.changed_area_m2 is None else result.changed_area_m2,
            "POLYGON_COUNT": result.polygons,
            "THRESHOLD_USED": result.threshold,
        }
        if result.probability_path is not None:
            results["PROBABILITY"] = str(result.probability_path)
        if result.vector_path is not None:
            results["POLYGONS"] = str(result.vector_path)
        return results
