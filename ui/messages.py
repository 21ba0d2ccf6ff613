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
    _push(iface, text, level, 12)
    return text


def report(iface, text: str, level=Qgis.Info, duration: int = 8) -> None:
    log(text, level)
    _push(iface, text, level, duration)


def _push(iface, text: str, level, duration: int) -> None:
    """Show `text` in place of Changen's earlier timed messages: QGIS stacks messages and shows an older one again,
    with its full duration, when the newer one closes, so stale warnings came back minutes later. Messages without
    a duration (the install offer) stay."""
    if iface is None:
        return
    bar = iface.messageBar()
    for item in bar.items():
        if item.title() == LOG_TAG and item.duration() > 0:
            bar.popWidget(item)
    bar.pushMessage(LOG_TAG, text, level=level, duration=duration)
