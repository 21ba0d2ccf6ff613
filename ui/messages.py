"""How outcomes reach the analyst: a short message-bar text that says what to do, details in the QGIS log."""

from qgis.core import Qgis, QgsMessageLog

from ..core.errors import InputError
from ..plugin import LOG_TAG


def log(text: str, level=Qgis.Info) -> None:
    QgsMessageLog.logMessage(text, LOG_TAG, level)


def report_error(iface, what: str, error: BaseException, details: str = "") -> str:
    """Push `error` to the message bar (InputError text is already a fix; others point to the log)."""
    if isinstance(error, InputError):
        text = f"{what}: {error}"
        level = Qgis.Warning
    else:
        text = (
            f"{what} failed ({type(error).__name__}: {error}). Check the inputs and settings, then retry; "
            f"the full error is in View → Panels → Log Messages → {LOG_TAG}."
        )
        level = Qgis.Critical
    log(f"{text}\n{details}".rstrip(), level)
    if iface is not None:
        iface.messageBar().pushMessage(LOG_TAG, text, level=level, duration=12)
    return text


def report(iface, text: str, level=Qgis.Info, duration: int = 8) -> None:
    log(text, level)
    if iface is not None:
        iface.messageBar().pushMessage(LOG_TAG, text, level=level, duration=duration)
