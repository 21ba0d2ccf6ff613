"""Processing: "Generate synthetic dataset" — synthetic change pairs for training detectors (core.dataset)."""

from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.errors import Canceled
from .algorithms import ChangenAlgorithm

METHODS = (
    ("mixed", "Mixed (inpainting and copy-paste)"),
    ("changen", "Changen generator"),
    ("copy-paste", "Copy-Paste"),
    ("inpainting", "Inpainting"),
)


class GenerateSyntheticDataset(ChangenAlgorithm):
    NAME = "generatedataset"
    DISPLAY_NAME = "Generate synthetic dataset"
    GROUP = "Synthesis"
    HELP = (
        "Writes synthetic bi-temporal change pairs for training change detectors, from a folder of "
        "single-date images with building masks (images/NAME.png and masks/NAME.png, buildings > 0).<br>"
        "Each pair is a random crop with simulated building removals and creations, synthesized with the "
        "chosen method, plus realism: independent colour jitter per date, slight misregistration, random date "
        "swap and a share of STAR pairs (another crop as t2, change = XOR of the masks).<br>"
        "Output: OUTPUT/000000/{t1,t2,mask_t1,mask_t2,change}.png + meta.json per pair and dataset.json. "
        "Pair k depends only on (seed, k): re-running with the same settings skips finished pairs (resumable)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(
            QgsProcessingParameterFile(
                "SOURCE", "Source folder (images/ and masks/)", behavior=QgsProcessingParameterFile.Folder
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "METHOD", "Synthesis method", options=[label for _, label in METHODS], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "PAIRS", "Number of pairs", QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "CROP",
                "Pair size (pixels)",
                QgsProcessingParameterNumber.Integer,
                defaultValue=256,
                minValue=32,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED", "Random seed", QgsProcessingParameterNumber.Integer, defaultValue=0
            )
        )
        self.add_advanced(
            QgsProcessingParameterNumber(
                "STAR",
                "Share of STAR pairs (another crop as t2)",
                QgsProcessingParameterNumber.Double,
                defaultValue=0.35,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.add_advanced(QgsProcessingParameterBoolean("JITTER", "Independent colour jitter per date", True))
        self.add_advanced(
            QgsProcessingParameterNumber(
                "MISREGISTRATION",
                "Largest t2 shift (pixels)",
                QgsProcessingParameterNumber.Double,
                defaultValue=2.0,
                minValue=0.0,
            )
        )
        self.add_advanced(QgsProcessingParameterBoolean("SWAP", "Swap t1 and t2 at random", True))
        self.add_advanced(
            QgsProcessingParameterNumber(
                "GROUND_TEXTURE",
                "Share of removals filled with ground texture",
                QgsProcessingParameterNumber.Double,
                defaultValue=0.5,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.add_advanced(
            QgsProcessingParameterBoolean("OPEN_GROUND", "Paste created buildings on open ground only", True)
        )
        self.add_advanced(
            QgsProcessingParameterString(
                "MODEL", "Generator (shipped model name or .safetensors path; empty = default)", optional=True
            )
        )
        self.add_device_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputNumber("WRITTEN", "Pairs written"))
        self.addOutput(QgsProcessingOutputNumber("SKIPPED", "Pairs already present (skipped)"))

    def run_algorithm(self, parameters, context, feedback):
        from ..core.data.dataset import find_sources, generate
        from ..core.data.recipes import Settings
        from ..core.synthesis.synthesize import DEFAULT_MODELS, load_synthesis_generator

        method = METHODS[self.parameterAsEnum(parameters, "METHOD", context)][0]
        settings = Settings(
            method=method,
            crop=self.parameterAsInt(parameters, "CROP", context),
            seed=self.parameterAsInt(parameters, "SEED", context),
            star=self.parameterAsDouble(parameters, "STAR", context),
            jitter=self.parameterAsBool(parameters, "JITTER", context),
            misregistration=self.parameterAsDouble(parameters, "MISREGISTRATION", context),
            swap=self.parameterAsBool(parameters, "SWAP", context),
            ground_texture=self.parameterAsDouble(parameters, "GROUND_TEXTURE", context),
            open_ground=self.parameterAsBool(parameters, "OPEN_GROUND", context),
        )
        pairs = self.parameterAsInt(parameters, "PAIRS", context)
        out = Path(self.parameterAsString(parameters, "OUTPUT", context))
        sources = find_sources([self.parameterAsFile(parameters, "SOURCE", context)])
        generator, device = None, "cpu"
        if method in DEFAULT_MODELS:
            from ..core.device import describe_device, pick_device

            device = pick_device(self.device(parameters, context))
            model = self.parameterAsString(parameters, "MODEL", context).strip() or DEFAULT_MODELS[method]
            generator = load_synthesis_generator(method, model, device)
            feedback.pushInfo(f"generator {model} on {describe_device(device)}")
        written = skipped = 0
        for index in range(pairs):  # one pair per call (shard index/pairs) gives progress and cancel per pair
            if feedback.isCanceled():
                raise Canceled(
                    f"Canceled after {index} of {pairs} pairs; run again with the same settings to resume."
                )
            counts = generate(
                sources, settings, pairs, out, (index, pairs), generator, device, show_progress=False
            )
            written, skipped = written + counts["written"], skipped + counts["skipped"]
            feedback.setProgress(100.0 * (index + 1) / pairs)
        feedback.pushInfo(f"{written} pairs written, {skipped} already present, into {out}")
        return {"OUTPUT": str(out), "WRITTEN": written, "SKIPPED": skipped}
