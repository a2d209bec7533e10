"""Process-level runtime pieces of the trainer: the workdir lock."""
