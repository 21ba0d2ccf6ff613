"""Widgets of the plugin; .ui files beside them are loaded at run time."""
