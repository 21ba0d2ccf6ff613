"""Processing algorithms shown while Python packages are missing: the provider keeps its algorithms (in the
toolbox, in models and in `qgis_process list`), and each one says what is missing and how to install it
instead of running. No import of core's heavy modules here."""

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException

# (name, display name, group): the same ids as the real algorithms, so models and scripts keep their references.
ALGORITHMS = (
    ("synthesize", "Synthesize change pair", "Synthesis"),
    ("generatedataset", "Generate synthetic dataset", "Synthesis"),
    ("detect", "Detect changes", "Detection"),
)


class MissingPackagesAlgorithm(QgsProcessingAlgorithm):
    def __init__(self, name: str, display_name: str, group: str, message: str):
        super().__init__()
        self._name, self._display_name, self._group, self._message = name, display_name, group, message

    def name(self):
        return self._name

    def displayName(self):  # noqa: N802 (QGIS's name)
        return f"{self._display_name} (needs packages: see help)"

    def group(self):
        return self._group

    def groupId(self):  # noqa: N802 (QGIS's name)
        return self._group.lower().replace(" ", "")

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return self._message

    def shortDescription(self):  # noqa: N802 (QGIS's name)
        return self._message

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)(self._name, self._display_name, self._group, self._message)

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        pass

    def canExecute(self):  # noqa: N802 (QGIS's name)
        return False, self._message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        raise QgsProcessingException(self._message)


def missing_package_algorithms(report) -> list[MissingPackagesAlgorithm]:
    return [MissingPackagesAlgorithm(*row, report.message()) for row in ALGORITHMS]
