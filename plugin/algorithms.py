"""What the Processing algorithms share: the base class that turns core's errors into Processing errors and
`feedback` into core's `progress`/`is_canceled` callbacks (the provider owns the list of algorithms)."""

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
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
