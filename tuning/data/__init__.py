"""Images and labels for a search: the sources of `--data` and their split (`sources`), folders
of a user's pictures (`folders`), class names (`labels`; CIFAR-100's in `label_names.csv`), the
synthetic stand-in (`synthetic`), `tf.data` pipelines (`pipeline`) and the frozen-backbone
feature cache (`features`).

May import `tuning.host`, the face's vocabulary (`tuning.config`, `tuning.errors`) and
`search_spaces` (the backbones a cache runs); nothing of the run directory or the engine.
"""
