"""The default experiment (a VAE on the embedded digits) and the schema every config must follow.

Every config file in `configs/` starts from `get_config()` here and changes values; it may not add
keys. `validate` checks a config against this schema and the allowed ranges before anything runs.
Use as a config file: `jaxvae train --config=configs/digits_vae.py:smoke --config.seed=1`.
"""

import difflib
import json
import re

import ml_collections
from etils import epath

from jaxvae.errors import UserError
from jaxvae.models import model_kind, registered_kinds

DATA_SOURCES = ("embedded", "tfds", "npz", "folder", "toy")
BINARIZATIONS = ("dynamic", "static", "none")
SCALES = ("unit", "symmetric")
OBJECTIVES = ("elbo", "iwae", "exact_elbo", "elbo_stl", "iwae_dreg", "miwae", "ciwae", "piwae")


def model_config(kind: str = "vae") -> ml_collections.ConfigDict:
  """The `model` section of model kind `kind`: `kind` and that kind's keys with their defaults
  (`jaxvae.models.registry`); e.g. `config.model = model_config('hvae')` in a config file."""
  section = ml_collections.ConfigDict({"kind": kind})
  section.update(model_kind(kind).defaults())
  return section


def get_config(variant: str = "", model: str = "vae") -> ml_collections.ConfigDict:
  """The default config, with the `model` section of kind `model`; `variant='smoke'` shrinks it
  to run in seconds (used by tests)."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.source = "embedded"  # embedded | tfds | npz | folder | toy (1-D bimodal data)
  config.data.name = "digits"  # embedded: digits; tfds: any image dataset name (mnist, ...)
  config.data.path = ""  # npz: the .npz file; folder: the folder holding one folder per split
  config.data.image_shape = ()  # npz of [N, D] vectors: read each as an image of this shape,
  #   e.g. (28, 28, 1); () = as stored
  config.data.data_dir = ""  # tfds: where datasets are prepared; "" = TFDS_DATA_DIR or ~/tensorflow_datasets
  config.data.download = True  # tfds: download and prepare the dataset if it is missing
  config.data.train_split = "train"
  config.data.eval_split = "test"
  config.data.binarize = "dynamic"  # dynamic: fresh draw per visit; static: fixed draw; none
  config.data.dequantize = False  # add U[0, 1) noise to integer levels (continuous likelihoods)
  config.data.num_bits = 0  # reduce 8-bit data to 2^num_bits levels; 0 keeps the source's levels
  config.data.scale = "unit"  # unit: [0, 1]; symmetric: [-1, 1]
  config.data.crop = 0  # center crop to crop x crop pixels; 0: none
  config.data.resize = 0  # resize to resize x resize pixels (after the crop); 0: none
  config.data.num_threads = 2

  config.model = model_config(model)  # model.kind and that kind's own keys

  config.train = ml_collections.ConfigDict()
  config.train.objective = "elbo"  # elbo | iwae
  config.train.num_samples = 1  # K samples of z per example in the objective (per group)
  config.train.num_groups = 1  # miwae, piwae: M groups of K samples (M K draws per example)
  config.train.ciwae_beta = 0.5  # ciwae: beta * ELBO + (1 - beta) * IWAE
  config.train.beta = 1.0  # elbo: KL weight (beta-VAE, Higgins et al., 2017); 1 = the ELBO
  config.train.kl_warmup_steps = 0  # elbo: KL weight ramps linearly from 0 to beta; 0 = off
  config.train.batch_size = 100
  config.train.num_steps = 10_000
  config.train.learning_rate = 1e-3
  config.train.log_every = 500
  config.train.checkpoint_every = 2_000
  config.train.keep_checkpoints = 3
  config.train.num_devices = 0  # 0 = every device of every process
  config.train.optimizer = "adam"  # adam | adamw
  config.train.weight_decay = 0.0  # adamw: decoupled weight decay (Loshchilov & Hutter, 2019)
  config.train.adam_b1 = 0.9  # Adam's decay rate of the first moment
  config.train.adam_b2 = 0.999  # Adam's decay rate of the second moment (VDVAE: 0.9)
  config.train.warmup_steps = 0  # linear warm-up from 0 to train.learning_rate
  config.train.decay = "constant"  # constant | cosine | linear, from warm-up end to num_steps
  config.train.end_learning_rate_fraction = 0.0  # cosine/linear: final rate / learning_rate
  config.train.clip_grad_norm = 0.0  # clip the gradient to this global norm; 0 = off
  config.train.accumulate_steps = 1  # micro-batches per update (gradient accumulation)
  config.train.ema_decay = 0.0  # EMA of params, used by eval and sampling; 0 = off (e.g. 0.999)
  config.train.skip_grad_norm = 0.0  # also skip updates whose gradient norm exceeds this; 0 = off
  config.train.skip_grad_norm_sigmas = 0.0  # also skip updates whose gradient norm exceeds its
  #   running mean by this many running standard deviations (e.g. 6); 0 = off
  config.train.grad_norm_stats_decay = 0.99  # decay of those running statistics (EMAs); they
  #   apply after about 1 / (1 - decay) updates
  config.train.max_consecutive_skips = 20  # past this many skipped updates in a row: roll back, or
  #   stop when train.max_rollbacks are spent
  config.train.max_rollbacks = 0  # roll back to the last checkpoint at most this often; 0 = stop
  config.train.rollback_lr_factor = 0.5  # each rollback multiplies the learning rate by this
  config.train.steps_per_call = 10  # train steps per device call (a lax.scan over batches)
  config.train.keep_every = 0  # also keep every checkpoint whose step is a multiple; 0 = off
  config.train.compute_dtype = "float32"  # float32 | bfloat16 (params stay float32)
  config.train.progress_bar = True  # a progress bar with ETA when stdout is a terminal
  config.train.fsdp_devices = 1  # mesh axis 'fsdp': shard params/optimizer state over it; 1 = off
  config.train.image_every = 0  # image grids every this many steps (a multiple of log_every);
  #   0 = with each checkpoint; always at the last step
  config.train.image_temperature = 1.0  # prior noise scale of the sample grids (!= 1: N(0, I) prior)

  config.eval = ml_collections.ConfigDict()
  config.eval.num_samples = 1_000  # K of the importance-sampled log p(x)
  config.eval.chunk_size = 100  # samples per chunk of the running logsumexp
  config.eval.batch_size = 100
  config.eval.seed = 0
  config.eval.after_training = True  # evaluate the final checkpoint when training ends
  config.eval.nested_num_samples = ()  # smaller K also reported, from the first K of the same samples
  config.eval.refine_steps = 0  # per-example posterior refinement (amortization gap); 0 = off
  config.eval.refine_num_samples = 10  # samples of the ELBO per refinement step
  config.eval.refine_learning_rate = 1e-2  # Adam step size of the refinement

  return apply_variant(config, variant)


def apply_variant(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """`config` itself for `variant=''`, shrunk by `smoke` for 'smoke'; anything else is an error."""
  if variant == "smoke":
    return smoke(config)
  if variant:
    raise UserError(f"unknown config variant {variant!r}; the only variant is 'smoke'")
  return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks any config in place to a run of seconds: few steps, small nets (of the built-in
  models; a user's model keeps its section), small K."""
  model = config.model if config.model.kind in registered_kinds() else {}  # not users' models
  shrink = dict(hidden_sizes=lambda v: (32,), upper_hidden_sizes=lambda v: (32,),
                channels=lambda v: tuple(min(c, 8) for c in v), blocks_per_stage=lambda v: 1,
                latent_dim=lambda v: min(v, 16), num_pseudo_inputs=lambda v: min(v, 10),
                encoder_blocks=_one_block_per_token, decoder_blocks=_one_block_per_token,
                width=lambda v: min(v, 16), resolution_widths=lambda v: "",
                latent_channels=lambda v: min(v, 4), num_mixtures=lambda v: min(v, 2))
  for key, smaller in shrink.items():
    if key in model:
      model[key] = smaller(model[key])
  config.train.batch_size = 16
  config.train.num_steps = 20
  config.train.log_every = 5
  config.train.checkpoint_every = 10
  config.eval.num_samples = 10
  config.eval.chunk_size = 5
  config.eval.batch_size = 64
  return config


def _one_block_per_token(blocks: str) -> str:
  """A block string with its `RxN` tokens cut to `Rx1` (every resolution kept)."""
  return re.sub(r"x\d+", "x1", blocks)


_CHOICES = {
    "data.source": DATA_SOURCES,
    "data.binarize": BINARIZATIONS,
    "data.scale": SCALES,
    "train.objective": OBJECTIVES,
}
_POSITIVE = (
    "data.num_threads", "train.num_samples", "train.batch_size",
    "train.num_steps", "train.learning_rate", "train.log_every", "train.checkpoint_every",
    "train.keep_checkpoints", "eval.num_samples", "eval.chunk_size", "eval.batch_size",
    "eval.refine_num_samples", "eval.refine_learning_rate",
)
_NON_NEGATIVE = ("seed", "eval.seed", "train.num_devices", "data.crop", "data.resize",
                 "eval.refine_steps")


def _flatten(config, prefix=""):
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _flatten(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def _unknown_key(key: str, schema: dict, kind: str) -> UserError:
  """The error for `key`, which `schema` lacks: the closest known key, or the section's keys."""
  section = key.rsplit(".", 1)[0]
  known = [k for k in schema if k.rsplit(".", 1)[0] == section]
  close = difflib.get_close_matches(key, known, n=1)
  hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
  if section == "model":
    hint += (f" (the model section holds model.kind={kind!r}'s keys; for another kind start "
             f"from its section, config.model = jaxvae.config.model_config(KIND))")
  return UserError(f"unknown config key '{key}'; {hint}")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `UserError` naming the first key that is unknown, of the wrong type or out of range;
  the `model` section is checked against its kind's keys and by its kind's own validation."""
  if not isinstance(config.get("model"), ml_collections.ConfigDict) or "kind" not in config.model:
    raise UserError("config key 'model.kind' is missing; start config files from "
                    "jaxvae.config.get_config()")
  kind = model_kind(config.model.kind)
  schema = dict(_flatten(get_config(model=config.model.kind)))
  values = dict(_flatten(config))
  for key, value in values.items():
    if key not in schema:
      raise _unknown_key(key, schema, config.model.kind)
    expected = type(schema[key])
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float:
      ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
      raise UserError(f"config key '{key}' must be of type {expected.__name__}, got {value!r}")
  missing = sorted(schema.keys() - values.keys())
  if missing:
    raise UserError(f"config key '{missing[0]}' is missing; start config files from "
                    f"jaxvae.config.get_config()")
  for key, choices in _CHOICES.items():
    if values[key] not in choices:
      raise UserError(f"config key '{key}' is {values[key]!r}; choose one of {', '.join(choices)}")
  for key in _POSITIVE:
    if not values[key] > 0:
      raise UserError(f"config key '{key}' must be positive, got {values[key]!r}")
  for key in _NON_NEGATIVE:
    if values[key] < 0:
      raise UserError(f"config key '{key}' must be >= 0, got {values[key]!r}")
  if any(not isinstance(k, int) or isinstance(k, bool) or k <= 0
         for k in values["eval.nested_num_samples"]):
    raise UserError(f"config key 'eval.nested_num_samples' must be a tuple of positive ints, got "
                    f"{values['eval.nested_num_samples']!r}")
  if not 0 <= values["data.num_bits"] <= 8:
    raise UserError(f"config key 'data.num_bits' must be 0 (keep) or 1..8, got "
                    f"{values['data.num_bits']}")
  if values["data.binarize"] != "none" and (values["data.dequantize"] or
                                            values["data.scale"] != "unit"):
    raise UserError("binarized data are {0, 1}: with data.binarize set, use data.dequantize=False "
                    "and data.scale='unit' (or set data.binarize='none')")
  section = ml_collections.ConfigDict({k: v for k, v in config.model.items() if k != "kind"})
  kind.validate(section, config)
  if values["data.source"] == "toy" and values["data.binarize"] != "none":
    raise UserError("the toy data are real-valued: set data.binarize='none'")
  shape = values["data.image_shape"]
  if any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in shape) or (
      shape and (len(shape) != 3 or values["data.source"] != "npz")):
    raise UserError(f"config key 'data.image_shape' must be () or (H, W, C) for data.source='npz'"
                    f", got {shape!r}")
  if values["data.source"] in ("npz", "folder") and not values["data.path"]:
    raise UserError(f"config key 'data.path' must name the {values['data.source']} data when "
                    f"data.source is {values['data.source']!r}")
  _validate_train(values)


_TRAIN_CHOICES = {
    "train.optimizer": ("adam", "adamw"),
    "train.decay": ("constant", "cosine", "linear"),
    "train.compute_dtype": ("float32", "bfloat16"),
}


def _validate_train(values: dict) -> None:
  """The optimizer, schedule, accumulation, EMA, skipping, rollback and step-chunking keys of
  `train`."""
  for key, choices in _TRAIN_CHOICES.items():
    if values[key] not in choices:
      raise UserError(f"config key '{key}' is {values[key]!r}; choose one of {', '.join(choices)}")
  for key in ("train.accumulate_steps", "train.steps_per_call", "train.fsdp_devices"):
    if values[key] < 1:
      raise UserError(f"config key '{key}' must be >= 1, got {values[key]!r}")
  for key in ("train.weight_decay", "train.warmup_steps", "train.clip_grad_norm",
              "train.skip_grad_norm", "train.skip_grad_norm_sigmas",
              "train.max_consecutive_skips", "train.max_rollbacks", "train.keep_every"):
    if values[key] < 0:
      raise UserError(f"config key '{key}' must be >= 0 (0 turns it off), got {values[key]!r}")
  for key in ("train.ema_decay", "train.adam_b1", "train.adam_b2",
              "train.end_learning_rate_fraction"):
    if not 0 <= values[key] < 1 + (key == "train.end_learning_rate_fraction"):
      raise UserError(f"config key '{key}' must be in [0, 1{']' if 'fraction' in key else ')'}, "
                      f"got {values[key]!r}")
  if not 0.5 <= values["train.grad_norm_stats_decay"] < 1:
    raise UserError(f"config key 'train.grad_norm_stats_decay' must be in [0.5, 1) (statistics "
                    f"over about 1 / (1 - decay) updates), got "
                    f"{values['train.grad_norm_stats_decay']!r}")
  if not 0 < values["train.rollback_lr_factor"] <= 1:
    raise UserError(f"config key 'train.rollback_lr_factor' must be in (0, 1] (the learning "
                    f"rate's factor at each rollback), got {values['train.rollback_lr_factor']!r}")
  if values["train.weight_decay"] and values["train.optimizer"] != "adamw":
    raise UserError("config key 'train.weight_decay' needs train.optimizer='adamw'")
  if values["train.warmup_steps"] >= values["train.num_steps"] and values["train.decay"] != "constant":
    raise UserError(f"train.warmup_steps={values['train.warmup_steps']} leaves no steps to decay "
                    f"over (train.num_steps={values['train.num_steps']}); lower it")
  if values["train.image_every"] < 0 or values["train.image_every"] % values["train.log_every"]:
    raise UserError(f"config key 'train.image_every' must be 0 (with each checkpoint) or a "
                    f"multiple of train.log_every={values['train.log_every']}, got "
                    f"{values['train.image_every']}")
  if values["train.image_temperature"] < 0:
    raise UserError(f"config key 'train.image_temperature' must be >= 0, got "
                    f"{values['train.image_temperature']}")
  if values["train.beta"] < 0 or values["train.kl_warmup_steps"] < 0:
    raise UserError(f"config keys 'train.beta' and 'train.kl_warmup_steps' must be >= 0, got "
                    f"{values['train.beta']} and {values['train.kl_warmup_steps']}")
  if ((values["train.beta"] != 1 or values["train.kl_warmup_steps"])
      and values["train.objective"] != "elbo"):
    raise UserError(f"train.beta and train.kl_warmup_steps weight the KL of the ELBO; with "
                    f"train.objective='{values['train.objective']}' keep beta=1 and no warm-up")
  if values["train.num_groups"] < 1 or (values["train.num_groups"] > 1 and
                                        values["train.objective"] not in ("miwae", "piwae")):
    raise UserError(f"config key 'train.num_groups' must be >= 1, and above 1 only with "
                    f"train.objective 'miwae' or 'piwae'; got {values['train.num_groups']}")
  if not 0 <= values["train.ciwae_beta"] <= 1:
    raise UserError(f"config key 'train.ciwae_beta' must be in [0, 1], got "
                    f"{values['train.ciwae_beta']}")
  if values["train.batch_size"] % values["train.accumulate_steps"]:
    raise UserError(f"train.batch_size={values['train.batch_size']} must be divisible by "
                    f"train.accumulate_steps={values['train.accumulate_steps']}")


def save_config(config: ml_collections.ConfigDict, path: str) -> None:
  """Writes the resolved config as JSON (tuples become lists); `path` may be local or gs://.
  Written to a temporary file and renamed, so a killed process never leaves a half-written one."""
  temporary = epath.Path(path + ".tmp")
  temporary.write_text(config.to_json(indent=2) + "\n")
  temporary.replace(path)


def migrate(values: dict) -> dict:
  """A saved config (JSON values) in the current layout. Configs saved before the model section
  held one kind's keys carry every kind's keys under `model`: they keep their kind's keys, and the
  VQ-VAE's code size, once `model.latent_dim`, becomes `model.code_dim`. Keys added since a config
  was saved take their defaults (which keep the behaviour from before they existed)."""
  model = values.get("model", {})
  kind = model.get("kind", "vae")
  if "codebook_update" in model and "inference" in model:  # The old layout: all kinds' keys.
    renames = {"vqvae": {"code_dim": "latent_dim"}}.get(kind, {})
    keys = [k for k in model_config(kind) if k != "kind"]
    values = {**values, "model": {"kind": kind, **{k: model[renames.get(k, k)] for k in keys}}}

  def fill(defaults: dict, saved: dict) -> dict:
    return {**defaults, **{k: fill(defaults[k], v) if isinstance(v, dict) and isinstance(
        defaults.get(k), dict) else v for k, v in saved.items()}}

  return fill(json.loads(get_config(model=kind).to_json()), values)


def load_config(path: str) -> ml_collections.ConfigDict:
  """The config saved by `save_config` (`migrate`d), validated, with lists turned back into
  tuples."""
  try:
    values = migrate(json.loads(epath.Path(path).read_text()))
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read the run's config {path} ({e}); is this a jaxvae workdir?") from None

  def restore(schema, saved):
    config = ml_collections.ConfigDict()
    for key, value in saved.items():
      expected = schema.get(key) if isinstance(schema, ml_collections.ConfigDict) else None
      if isinstance(value, dict):
        value = restore(expected, value)
      elif isinstance(value, list) and isinstance(expected, tuple):
        value = tuple(value)
      config[key] = value
    return config

  config = restore(get_config(model=values.get("model", {}).get("kind", "vae")), values)
  validate(config)
  return config
