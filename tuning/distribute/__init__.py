"""One search on several processes or machines: keras-tuner's chief oracle served over gRPC and
its repairs (`protocol`), and the chief's and a worker's side of a search (`roles`).

May import `tuning.rundir`, `tuning.data`, `tuning.host` and the face's vocabulary; the engine
hands a worker what it runs (`roles.worker_search`), so nothing here imports the engine.
"""
