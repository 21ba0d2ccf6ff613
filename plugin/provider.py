"""The "Changen" Processing provider: its algorithms run in the toolbox, in batch mode and in qgis_process."""

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import ICON_PATH


class ChangenProvider(QgsProcessingProvider):
    def id(self):
        return "changen"

    def name(self):
        return "Changen"

    def longName(self):  # noqa: N802 (QGIS's name)
        return "Changen: generative change modelling"

    def icon(self):
        return QIcon(ICON_PATH)

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        from .alg_detect import DetectChanges
        from .alg_generate_dataset import GenerateSyntheticDataset
        from .alg_synthesize import SynthesizeChangePair

        for algorithm in (SynthesizeChangePair(), GenerateSyntheticDataset(), DetectChanges()):
            self.addAlgorithm(algorithm)
