"""The machine and the libraries beneath a search: CPU facts and oneDNN (`cpu`), the precision
chosen for the device (`precision`), TensorFlow's quiet import and memory (`runtime`), Ctrl-C
(`interrupt`), writes that never leave half a file (`files`), and every use of keras-tuner's and
TensorFlow's private API (`internals`).

The bottom room: imports nothing of `tuning` but the face's vocabulary (`tuning.config`,
`tuning.errors`), so every other room may use it.
"""
