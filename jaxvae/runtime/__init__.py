"""The runtime below the trainer and the evaluator: device mesh and shardings (`mesh`), Orbax
checkpoints (`checkpoint`), metric writers (`metrics`), image grids (`images`), many processes as
one job (`distributed`), the file layout of a workdir (`workdir`) and trained runs read back
(`trained.load_trained`). See docs/architecture.md for the layers.
"""
