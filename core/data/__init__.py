"""Training and evaluation data: tiles, label spaces, pair folders, augmentation."""
