"""Training the ChangeStar detector on synthetic pairs."""
