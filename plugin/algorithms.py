"""What the Processing algorithms share: the base class that turns core's errors into Processing errors and
`feedback` into core's `progress`/`is_canceled` callbacks (the provider owns the list of algorithms)."""

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingUtils,
)

from ..core.device import DEVICE_CHOICES, DEVICE_LABELS
from ..core.errors import Canceled, InputError


class ChangenAlgorithm(QgsProcessingAlgorithm):
    """Subclasses define `NAME`, `DISPLAY_NAME`, `GROUP`, `HELP`, `initAlgorithm` and `run_algorithm`."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = ""
    HELP = ""

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802 (QGIS's name)
        return self.DISPLAY_NAME

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802 (QGIS's name)
        return self.GROUP.lower().replace(" ", "")

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return self.HELP

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            return self.run_algorithm(parameters, context, feedback)
        except Canceled as canceled:
            raise QgsProcessingException(str(canceled) or f"{self.DISPLAY_NAME} was canceled.") from None
        except InputError as error:
            raise QgsProcessingException(str(error)) from None

    # --------------------------------------------------------------------------------------------- helpers
    def add_advanced(self, parameter):
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(parameter)

    def add_device_parameter(self):
        self.add_advanced(
            QgsProcessingParameterEnum(
                "DEVICE",
                "Device",
                options=[DEVICE_LABELS[choice] for choice in DEVICE_CHOICES],
                defaultValue=0,
            )
        )

    def device(self, parameters, context) -> str:
        return DEVICE_CHOICES[self.parameterAsEnum(parameters, "DEVICE", context)]


def progress_callbacks(feedback, start: float = 0.0, end: float = 100.0):
    """core's `(progress, is_canceled)` pair reporting into `feedback`, with core's 0–100 mapped to start–end."""

    def progress(percent: float) -> None:
        feedback.setProgress(start + (end - start) * min(max(percent, 0.0), 100.0) / 100.0)

    return progress, feedback.isCanceled


class _StyleResult(QgsProcessingLayerPostProcessorInterface):
    """Styles a result layer once QGIS has loaded it (main thread). QGIS does not own post-processors, so the
    live ones are kept in `_alive`."""

    _alive = []

    def __init__(self, style):
        super().__init__()
        self.style = style
        _StyleResult._alive.append(self)

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        self.style(layer)
        _StyleResult._alive.remove(self)


def style_when_loaded(context, path, style) -> None:
    """`style(layer)` once the destination output at `path` is loaded into the project."""
    if path and context.willLoadLayerOnCompletion(path):
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(_StyleResult(style))


def load_raster_on_completion(context, path, name: str, output: str, style=None) -> None:
    """Load a raster the algorithm wrote (not a destination parameter) under `name` (not its file name), as a
    raster (no OGR attempt first), styled by `style(layer)` if given."""
    details = QgsProcessingContext.LayerDetails(name, context.project(), output)
    details.forceName = True
    details.layerTypeHint = QgsProcessingUtils.LayerHint.Raster
    if style is not None:
        details.setPostProcessor(_StyleResult(style))
    context.addLayerToLoadOnCompletion(str(path), details)
