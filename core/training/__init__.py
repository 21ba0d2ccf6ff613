"""Trainers (command line only; left out of the plugin zip)."""
