"""The search itself: the flow of one run (`search.run_search`), keras-tuner's tuner and oracle
(`tuner`), the callbacks of every trial (`callbacks`), trial records and progress lines
(`records`), known recipes first (`recipes`), a model's cost and cap (`cost`), the time budget
(`budget`) and the plan it makes (`plan`), and TensorBoard's HParams config (`hparams`).

The top room: may import every other room and `search_spaces`; none of them imports it.
"""
