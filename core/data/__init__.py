"""Training and evaluation data: building tiles, pair folders, augmentation and pair recipes."""
