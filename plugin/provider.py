"""The "Changen" Processing provider: its algorithms run in the toolbox, in batch mode and in qgis_process."""

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import ICON_PATH, LOG_TAG


class ChangenProvider(QgsProcessingProvider):
    def __init__(self, dependencies=None):
        super().__init__()
        # a deps.DependencyReport; with missing packages: placeholder algorithms
        self.dependencies = dependencies

    def id(self):
        return "changen"

    def name(self):
        return LOG_TAG

    def longName(self):  # noqa: N802 (QGIS's name)
        return f"{LOG_TAG}: generative change modelling"

    def icon(self):
        return QIcon(ICON_PATH)

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        if self.dependencies is not None and not self.dependencies.ok:
            from .alg_missing import missing_package_algorithms

            for algorithm in missing_package_algorithms(self.dependencies):
                self.addAlgorithm(algorithm)
            return
        from .alg_detect import DetectChanges
        from .alg_generate_dataset import GenerateSyntheticDataset
        from .alg_landcover import SynthesizeLandcoverChange
        from .alg_synthesize import SynthesizeChangePair

        algorithms = (
            SynthesizeChangePair(),
            GenerateSyntheticDataset(),
            DetectChanges(),
            SynthesizeLandcoverChange(),
        )
        for algorithm in algorithms:
            self.addAlgorithm(algorithm)
