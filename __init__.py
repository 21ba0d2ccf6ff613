"""Changen for QGIS: the plugin entry point.

`classFactory` must never raise: a missing dependency disables only what needs it, with a message.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin.main import ChangenPlugin

    return ChangenPlugin(iface)
