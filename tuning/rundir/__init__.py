"""A search's run directory: what makes it the same search (`identity`), one search at a time
in it (`lock`), and its trials table read back without TensorFlow (`trials_table`).

The names of the files every room reads or writes there are here. May import `tuning.data`,
`tuning.host` and the face's vocabulary; nothing of the engine.
"""

CONFIG_FILE = "search_config.json"  # the search's settings and data facts: its identity
TRIALS_FILE = "trials.csv"  # one row per trial, rebuilt from the oracle's trials
BEST_FILE = "best_hyperparameters.json"
CLASS_NAMES_FILE = "class_names.json"  # beside every saved model: its outputs' class names
ENDED = ("COMPLETED", "FAILED")  # statuses after which keras-tuner never runs a trial again
