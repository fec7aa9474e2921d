"""Class names and their order inside the project; clip keys and agreement levels as files name them.

Label order is DFEW's (docs/method.md). FERV39K names map onto it; MAFW keeps its own
11 classes in the order of its label files.
"""

DFEW_CLASSES = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")

# FERV39K folder/label names -> index in DFEW_CLASSES.
FERV39K_TO_DFEW = {name: DFEW_CLASSES.index(name) for name in DFEW_CLASSES}

# MAFW single-label classes, 1-based in its split files, in this order.
MAFW_CLASSES = (
    "Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise",
    "Contempt", "Anxiety", "Helplessness", "Disappointment",
)


def level_name(level: float) -> str:
    """An agreement level as tables and figures name it ("0.75")."""
    return f"{level:.2f}"


def clip_key(name: str) -> str:
    """A clip id comparable across files: DFEW's split CSVs say "23" for folder "00023"."""
    name = str(name).strip()
    return str(int(name)) if name.isdigit() else name
