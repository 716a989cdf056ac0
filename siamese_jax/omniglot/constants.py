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
  "Alphabet_of_the_Magi",
  "Anglo-Saxon_Futhorc",
  "Arcadian",
  "Armenian",
  "Asomtavruli_(Georgian)",
  "Balinese",
  "Bengali",
  "Blackfoot_(Canadian_Aboriginal_Syllabics)",
  "Braille",
  "Burmese_(Myanmar)",
  "Cyrillic",
  "Early_Aramaic",
  "Futurama",
  "Grantha",
  "Greek",
  "Gujarati",
  "Hebrew",
  "Inuktitut_(Canadian_Aboriginal_Syllabics)",
  "Japanese_(hiragana)",
  "Japanese_(katakana)",
  "Korean",
  "Latin",
  "Malay_(Jawi_-_Arabic)",
  "Mkhedruli_(Georgian)",
  "N_Ko",
  "Ojibwe_(Canadian_Aboriginal_Syllabics)",
  "Sanskrit",
  "Syriac_(Estrangelo)",
  "Tagalog",
  "Tifinagh",
)
EVALUATION_ALPHABETS = (
  "Angelic",
  "Atemayar_Qelisayer",
  "Atlantean",
  "Aurek-Besh",
  "Avesta",
  "Ge_ez",
  "Glagolitic",
  "Gurmukhi",
  "Kannada",
  "Keble",
  "Malayalam",
  "Manipuri",
  "Mongolian",
  "Old_Church_Slavonic_(Cyrillic)",
  "Oriya",
  "Sylheti",
  "Syriac_(Serto)",
  "Tengwar",
  "Tibetan",
  "ULOG",
)
ALPHABETS = BACKGROUND_ALPHABETS + EVALUATION_ALPHABETS

# Characters per alphabet, as released.
ALPHABET_SIZES = {
  "Alphabet_of_the_Magi": 20,
  "Anglo-Saxon_Futhorc": 29,
  "Arcadian": 26,
  "Armenian": 41,
  "Asomtavruli_(Georgian)": 40,
  "Balinese": 24,
  "Bengali": 46,
  "Blackfoot_(Canadian_Aboriginal_Syllabics)": 14,
  "Braille": 26,
  "Burmese_(Myanmar)": 34,
  "Cyrillic": 33,
  "Early_Aramaic": 22,
  "Futurama": 26,
  "Grantha": 43,
  "Greek": 24,
  "Gujarati": 48,
  "Hebrew": 22,
  "Inuktitut_(Canadian_Aboriginal_Syllabics)": 16,
  "Japanese_(hiragana)": 52,
  "Japanese_(katakana)": 47,
  "Korean": 40,
  "Latin": 26,
  "Malay_(Jawi_-_Arabic)": 40,
  "Mkhedruli_(Georgian)": 41,
  "N_Ko": 33,
  "Ojibwe_(Canadian_Aboriginal_Syllabics)": 14,
  "Sanskrit": 42,
  "Syriac_(Estrangelo)": 23,
  "Tagalog": 17,
  "Tifinagh": 55,
  "Angelic": 20,
  "Atemayar_Qelisayer": 26,
  "Atlantean": 26,
  "Aurek-Besh": 26,
  "Avesta": 26,
  "Ge_ez": 26,
  "Glagolitic": 45,
  "Gurmukhi": 45,
  "Kannada": 41,
  "Keble": 26,
  "Malayalam": 47,
  "Manipuri": 40,
  "Mongolian": 30,
  "Old_Church_Slavonic_(Cyrillic)": 45,
  "Oriya": 46,
  "Sylheti": 28,
  "Syriac_(Serto)": 23,
  "Tengwar": 25,
  "Tibetan": 42,
  "ULOG": 26,
}
SPLIT_ALPHABETS = {
  "background": BACKGROUND_ALPHABETS,
  "evaluation": EVALUATION_ALPHABETS,
  "small1": ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"),
  "small2": ("Greek", "Japanese_(katakana)", "Latin", "Sanskrit", "Tagalog"),
}

# Image and class counts per split, as released.
SPLIT_COUNTS = {
  "background": dict(alphabets=30, characters=964, images=19280),
  "evaluation": dict(alphabets=20, characters=659, images=13180),
}


class OmniglotDataError(RuntimeError):
  """The Omniglot data are missing, corrupt or not what the code expects."""
