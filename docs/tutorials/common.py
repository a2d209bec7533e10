"""What every tutorial script shares: configs from configs/, figures to PNG, code listings taken
from the source, pages."""

import importlib.util
import inspect
import os

from matplotlib.figure import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config_file(name: str, variant: str = ""):
  """`get_config(variant)` of `configs/<name>.py`."""
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def figure(columns: int = 1, rows: int = 1, width: float = 4.5, height: float = 3.2):
  """A constrained-layout matplotlib `Figure` and its `[rows, columns]` axes (no pyplot state)."""
  fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
  return fig, fig.subplots(rows, columns, squeeze=False)


def save(fig: Figure, out_dir: str, name: str) -> str:
  """Writes `fig` to `out_dir/images/name.png`; returns the path relative to `out_dir`."""
  os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
  fig.savefig(os.path.join(out_dir, "images", f"{name}.png"), dpi=80)
  return f"images/{name}.png"


def listing(*objects) -> str:
  """A fenced Python block with the source code of `objects` (functions, classes, modules)."""
  return "```python\n" + "\n\n".join(inspect.getsource(o).rstrip() for o in objects) + "\n```"


def write_page(out_dir: str, name: str, text: str) -> str:
  """Writes the Markdown page `out_dir/name.md`; returns its path."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{name}.md")
  with open(path, "w") as f:
    f.write(text.strip() + "\n")
  return path
