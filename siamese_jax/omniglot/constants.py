"""Facts about the Omniglot release that the code checks data and configs against."""

IMAGE_SIZE = 105
NUM_CHARACTERS = 1623
NUM_DRAWERS = 20

# tfds split name -> zip file name of the official release.
SPLIT_ZIPS = {
    "background": "images_background.zip",
    "evaluation": "images_evaluation.zip",
    "small1": "images_background_small1.zip",
    "small2": "images_background_small2.zip",
}

BACKGROUND_ALPHABETS = (
    "Alphabet_of_the_Magi", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian",
    "Asomtavruli_(Georgian)", "Balinese", "Bengali",
    "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Braille", "Burmese_(Myanmar)",
    "Cyrillic", "Early_Aramaic", "Futurama", "Grantha", "Greek", "Gujarati",
    "Hebrew", "Inuktitut_(Canadian_Aboriginal_Syllabics)",
    "Japanese_(hiragana)", "Japanese_(katakana)", "Korean", "Latin",
    "Malay_(Jawi_-_Arabic)", "Mkhedruli_(Georgian)", "N_Ko",
    "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Sanskrit",
    "Syriac_(Estrangelo)", "Tagalog", "Tifinagh",
)
EVALUATION_ALPHABETS = (
    "Angelic", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta",
    "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada", "Keble", "Malayalam",
    "Manipuri", "Mongolian", "Old_Church_Slavonic_(Cyrillic)", "Oriya",
    "Sylheti", "Syriac_(Serto)", "Tengwar", "Tibetan", "ULOG",
)
# Evaluation alphabets that Lake's 20 official runs do not use (Koch's validation set).
KOCH_VALIDATION_ALPHABETS = (
    "Angelic", "Atemayar_Qelisayer", "Aurek-Besh", "Avesta", "Keble",
    "Mongolian", "Oriya", "Sylheti", "Syriac_(Serto)", "ULOG",
)
ALPHABETS = BACKGROUND_ALPHABETS + EVALUATION_ALPHABETS

# Image and class counts per split, as released.
SPLIT_COUNTS = {
    "background": dict(alphabets=30, characters=964, images=19280),
    "evaluation": dict(alphabets=20, characters=659, images=13180),
}


class OmniglotDataError(RuntimeError):
  """The Omniglot data are missing, corrupt or not what the code expects."""
