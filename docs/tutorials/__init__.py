"""The tutorials: each module's `run(out_dir, tiny)` computes its numbers and figures and writes its
Markdown page, so every number on a page is the output of the code shown on it."""
