"""Processing: "Synthesize land-cover change" — class transitions of a classified raster's regions, drawn by the
RS-DiT onto the image (core.synthesis.landcover)."""

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.events.classes import CLASS_SCHEMES
from .algorithms import ChangenAlgorithm, load_raster_on_completion, progress_callbacks

MAPPING_HINT = "Set 'Class scheme of the land-cover raster', or give a class mapping JSON file."


class SynthesizeLandcoverChange(ChangenAlgorithm):
    NAME = "landcover"
    DISPLAY_NAME = "Synthesize land-cover change"
    GROUP = "Synthesis"
    HELP = (
        "Changes the classes of connected regions of a classified raster and draws the image after each step with "
        "Changen2's RS-DiT; outside the change the image stays the input's.<br>"
        "Land cover: a single-band classified raster on the image's grid (same CRS, pixel size and extent). Its "
        "values are mapped onto the project classes (unlabeled, bareland, rangeland, developed, road, tree, water, "
        'agriculture, building) by a known scheme, or by a JSON file {"raster value": "project class"}; '
        "<i>project</i> means the values are project class ids already (e.g. a mask_t*.tif written here).<br>"
        "Class changes: rules FROM:TO separated by commas (names or ids, e.g. <i>tree:bareland,water:bareland</i>) "
        "turn every region of class FROM into TO in step 1. Every step then switches each region of at least "
        "'Smallest region' pixels with the transition probability to a class drawn from the transition table "
        "(default: Changen2's OpenEarthMap table).<br>"
        "Writes into the output folder, as GeoTIFFs on the image's grid: image_t0…image_tT, mask_t0…mask_tT (project "
        "classes, with a QGIS style), change_t1…change_tT, fromto_t1…fromto_tT (code from × 9 + to where the class "
        "changed; fromto_t0_tT for T > 1), fromto_legend.json, events.json and, for T > 1, animation.gif. The same "
        "seed gives the same result."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Image"))
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "LANDCOVER", "Land-cover raster (classified, on the image's grid)"
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "SOURCE",
                "Class scheme of the land-cover raster",
                options=list(CLASS_SCHEMES),
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "CLASS_MAP",
                'Class mapping JSON {"value": "project class"} (replaces the scheme)',
                extension="json",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "CHANGE_CLASS", "Class changes in step 1 (FROM:TO, comma-separated)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "TRANSITION",
                "Random transition probability per region and step",
                QgsProcessingParameterNumber.Double,
                defaultValue=0.2,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "MIN_REGION",
                "Smallest region a random transition changes (pixels)",
                QgsProcessingParameterNumber.Integer,
                defaultValue=256,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "STEPS", "Time steps T", QgsProcessingParameterNumber.Integer, defaultValue=1, minValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED", "Random seed", QgsProcessingParameterNumber.Integer, defaultValue=0
            )
        )
        self.add_advanced(
            QgsProcessingParameterFile(
                "TRANSITIONS",
                "Transition table JSON (empty: Changen2's OpenEarthMap table)",
                extension="json",
                optional=True,
            )
        )
        self.add_device_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("POST_IMAGE", "Post-event image (last step)"))
        self.addOutput(QgsProcessingOutputRasterLayer("FROM_TO", "From→to class change map"))
        self.addOutput(QgsProcessingOutputFile("EVENT_LOG", "Event log (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("REGIONS", "Regions that changed class"))

    def run_algorithm(self, parameters, context, feedback):
        from ..core.events.classes import load_class_map
        from ..core.events.transitions import ClassChange
        from .landcover_jobs import LandcoverRequest, write_landcover
        from .layers import raster_path, style_from_qml

        image_layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        labels_layer = self.parameterAsRasterLayer(parameters, "LANDCOVER", context)
        class_map = self.parameterAsFile(parameters, "CLASS_MAP", context)
        mapping = (
            load_class_map(class_map)
            if class_map
            else CLASS_SCHEMES[self.parameterAsEnum(parameters, "SOURCE", context)]
        )
        rules = self.parameterAsString(parameters, "CHANGE_CLASS", context)
        steps = self.parameterAsInt(parameters, "STEPS", context)
        request = LandcoverRequest(
            image_path=raster_path(image_layer),
            labels_path=raster_path(labels_layer),
            mapping=mapping,
            class_changes=tuple(ClassChange.parse(rule) for rule in rules.split(",") if rule.strip()),
            steps=steps,
            seed=self.parameterAsInt(parameters, "SEED", context),
            transition=self.parameterAsDouble(parameters, "TRANSITION", context),
            min_region=self.parameterAsInt(parameters, "MIN_REGION", context),
            transitions_path=self.parameterAsFile(parameters, "TRANSITIONS", context) or None,
            device=self.device(parameters, context),
            inputs_hint=MAPPING_HINT,
        )
        out = self.parameterAsString(parameters, "OUTPUT", context)
        output = write_landcover(request, out, *progress_callbacks(feedback))
        feedback.pushInfo(
            f"{output.regions} region(s) changed class, {output.changed_pixels} px per step, on {output.device}, "
            f"{output.seconds:.1f} s"
        )
        title = f"{image_layer.name()}, t{steps}"
        load_raster_on_completion(
            context, output.post_image, f"Changen land-cover post-event ({title})", "POST_IMAGE"
        )
        for t in range(steps + 1):
            name = f"Changen classes t{t} ({image_layer.name()})"
            load_raster_on_completion(context, output.path(f"mask_t{t}.tif"), name, "OUTPUT", style_from_qml)
        load_raster_on_completion(
            context, output.from_to, f"Changen from→to ({title})", "FROM_TO", style_from_qml
        )
        return {
            "OUTPUT": out,
            "POST_IMAGE": output.post_image,
            "FROM_TO": output.from_to,
            "EVENT_LOG": output.path("events.json"),
            "REGIONS": output.regions,
        }
