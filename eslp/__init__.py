"""ESLP: learn sentiment scores for face images through sentences."""

HAPPY = "happy"
ANGRY = "angry"
CLASSES = (ANGRY, HAPPY)
"""Class names in label order: angry is 0 and happy is 1 in every model and array."""

FACE_SIZE = 48
"""FER2013 faces are 48x48 grey images."""
