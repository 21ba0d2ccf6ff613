"""The Synthesize tab's run options: random events per step and their seed, time steps, the method (with what it
does) and, for the generative methods, what happens to the unchanged pixels. Method and unchanged mode are saved
in the settings as soon as they change."""

from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from ..core.synthesis.methods import DEFAULT_MODELS, METHOD_INFO, METHODS, UNCHANGED_LABELS, UNCHANGED_MODES
from ..plugin.settings import load_settings, save_settings
from .widgets import button, row, spin


class SynthesisOptions(QWidget):
    """`random_button` asks for step 1's random events as edits; `method` emits when another method is chosen."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        random_box = QGroupBox("Random events")
        random_form = QFormLayout(random_box)
        every_step = "in every step (step 1: unless drawn with Random events)."
        self.random_remove = spin(
            0, 500, 0, "ChangenRandomRemove", f"Buildings removed at random {every_step}"
        )
        self.random_create = spin(0, 500, 0, "ChangenRandomCreate", f"Copies placed at random {every_step}")
        random_form.addRow("Remove / create", row(self.random_remove, self.random_create))
        self.seed = spin(0, 2**31 - 1, 0, "ChangenSeed", "Same seed, same events and images.")
        self.random_button = button(
            "Random events",
            "ChangenRandomEvents",
            "Draw step 1's random removals and copies on the map now, to see and edit them before the preview.",
        )
        random_form.addRow("Seed", row(self.seed, self.random_button))
        layout.addWidget(random_box)

        run_form = QFormLayout()
        steps_tip = "Time steps T: images t1…tT are synthesized one after another."
        self.steps = spin(1, 20, 1, "ChangenSteps", steps_tip)
        settings = load_settings()
        self.method = QComboBox()
        self.method.setObjectName("ChangenMethod")
        for key in METHODS:
            self.method.addItem(METHOD_INFO[key].label, key)
        self.method.setCurrentIndex(METHODS.index(settings.synthesis_method))
        run_form.addRow("Time steps / method", row(self.steps, self.method))
        self.method_hint = QLabel()  # what the method does, said before the run
        self.method_hint.setObjectName("ChangenMethodHint")
        self.method_hint.setWordWrap(True)
        run_form.addRow("", self.method_hint)
        self.unchanged = QComboBox()
        self.unchanged.setObjectName("ChangenUnchanged")
        for key in UNCHANGED_MODES:
            self.unchanged.addItem(UNCHANGED_LABELS[key], key)
        self.unchanged.setCurrentIndex(UNCHANGED_MODES.index(settings.synthesis_unchanged))
        self.unchanged.setToolTip(
            "Changen only. Keep: the image stays as it was outside the change; only the edited buildings are "
            "generated (blended in, colours matched). Regenerate: the generator redraws the whole image, as in the "
            "paper (varied training data, but colours and texture change everywhere)."
        )
        run_form.addRow("Changen", self.unchanged)
        layout.addLayout(run_form)
        self._show_method()
        self.method.currentIndexChanged.connect(self._method_changed)
        self.unchanged.currentIndexChanged.connect(self._unchanged_changed)

    def _show_method(self):
        self.unchanged.setEnabled(self.method.currentData() in DEFAULT_MODELS)  # the generative methods
        self.method_hint.setText(METHOD_INFO[self.method.currentData()].description)

    def _method_changed(self, *_):
        settings = load_settings()
        settings.synthesis_method = self.method.currentData()
        save_settings(settings)
        self._show_method()

    def _unchanged_changed(self, *_):
        settings = load_settings()
        settings.synthesis_unchanged = self.unchanged.currentData()
        save_settings(settings)
