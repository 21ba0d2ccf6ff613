"""The "Changen" Processing provider: its algorithms run in the toolbox, in batch mode and in qgis_process."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ChangenProvider(QgsProcessingProvider):
    def id(self):
        return "changen"

    def name(self):
        return "Changen"

    def longName(self):  # noqa: N802 (QGIS's name)
        return "Changen: generative change modelling"

    def icon(self):
        return QIcon(os.path.join(PLUGIN_DIR, "resources", "icons", "changen.png"))

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        from .alg_detect import DetectChanges
        from .alg_generate_dataset import GenerateSyntheticDataset
        from .alg_synthesize import SynthesizeChangePair

        for algorithm in (SynthesizeChangePair(), GenerateSyntheticDataset(), DetectChanges()):
            self.addAlgorithm(algorithm)
