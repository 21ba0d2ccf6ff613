"""Processing: "Generate synthetic dataset" — synthetic change pairs for training detectors (`core.data.dataset`);
its options are `core.data.recipes.Settings`' fields, described once there (`Option`)."""

from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRange,
    QgsProcessingParameterString,
)

from ..core.errors import Canceled
from .algorithms import ChangenAlgorithm


def _parameter(item, option):
    """The Processing parameter of a `Settings` field (named FIELD_NAME), from its `core.data.recipes.Option`."""
    name, default = item.name.upper(), item.default
    if option.choices is not None:
        labels, index = list(option.choices.values()), list(option.choices).index(default)
        return QgsProcessingParameterEnum(name, option.label, options=labels, defaultValue=index)
    if isinstance(default, bool):
        return QgsProcessingParameterBoolean(name, option.label, default)
    if isinstance(default, tuple):
        kind = QgsProcessingParameterNumber.Double
        # optional: a mandatory range is refused when left out, even with a default (QGIS checks it so)
        return QgsProcessingParameterRange(
            name, option.label, kind, ",".join(map(str, default)), optional=True
        )
    kind = (
        QgsProcessingParameterNumber.Integer
        if isinstance(default, int)
        else QgsProcessingParameterNumber.Double
    )
    bounds = {
        key: value
        for key, value in (("minValue", option.low), ("maxValue", option.high))
        if value is not None
    }
    return QgsProcessingParameterNumber(name, option.label, kind, defaultValue=default, **bounds)


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
        from ..core.data.recipes import setting_options

        self.addParameter(
            QgsProcessingParameterFile(
                "SOURCE", "Source folder (images/ and masks/)", behavior=QgsProcessingParameterFile.Folder
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "PAIRS", "Number of pairs", QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1
            )
        )
        for item, option in setting_options():
            parameter = _parameter(item, option)
            if option.advanced:
                self.add_advanced(parameter)
            else:
                self.addParameter(parameter)
        self.add_advanced(
            QgsProcessingParameterString(
                "MODEL", "Generator (shipped model name or .safetensors path; empty = default)", optional=True
            )
        )
        self.add_device_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputNumber("WRITTEN", "Pairs written"))
        self.addOutput(QgsProcessingOutputNumber("SKIPPED", "Pairs already present (skipped)"))

    def _setting(self, item, option, parameters, context):
        name, default = item.name.upper(), item.default
        if option.choices is not None:
            return list(option.choices)[self.parameterAsEnum(parameters, name, context)]
        if isinstance(default, bool):
            return self.parameterAsBool(parameters, name, context)
        if isinstance(default, tuple):
            return tuple(self.parameterAsRange(parameters, name, context))
        if isinstance(default, int):
            return self.parameterAsInt(parameters, name, context)
        return self.parameterAsDouble(parameters, name, context)

    def run_algorithm(self, parameters, context, feedback):
        from ..core.data.dataset import find_sources, generate
        from ..core.data.recipes import Settings, setting_options
        from ..core.synthesis.synthesize import DEFAULT_MODELS, load_synthesis_generator

        settings = Settings(
            **{
                item.name: self._setting(item, option, parameters, context)
                for item, option in setting_options()
            }
        )
        method = settings.method
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
