"""The default experiment (a VAE on the embedded digits) and the schema every config must follow.

Every config file in `configs/` starts from `get_config()` here and changes values; it may not add
keys. `validate` checks a config against this schema and the allowed ranges before anything runs.
Use as a config file: `jaxvae train --config=configs/digits_vae.py:smoke --config.seed=1`.
"""

import ml_collections
from etils import epath

from jaxvae.errors import UserError

DATA_SOURCES = ("embedded", "tfds", "npz", "folder", "toy")
BINARIZATIONS = ("dynamic", "static", "none")
SCALES = ("unit", "symmetric")
LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic", "categorical256")
MODEL_KINDS = ("vae", "hvae", "cvae", "toy", "vqvae", "vq_prior")
NETWORKS = ("mlp", "resnet")
ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "swish")
POSTERIORS = ("diag", "full_cov", "mixture", "planar_flow", "iaf")
PRIORS = ("standard_normal", "mixture", "vamp")
HVAE_INFERENCE = ("top_down", "bottom_up")
OBJECTIVES = ("elbo", "iwae", "exact_elbo")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The default config; `variant='smoke'` shrinks it to run in seconds (used by tests)."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.source = "embedded"  # embedded | tfds | npz | folder | toy (1-D bimodal data)
  config.data.name = "digits"  # embedded: digits; tfds: any image dataset name (mnist, ...)
  config.data.path = ""  # npz: the .npz file; folder: the folder holding one folder per split
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

  config.model = ml_collections.ConfigDict()
  config.model.kind = "vae"  # vae | hvae (hierarchical) | cvae (label-conditional) | toy (1-D)
  config.model.network = "mlp"  # mlp | resnet (conv; image sides divisible by 2^len(channels))
  config.model.hidden_sizes = (256, 256)  # mlp: encoder layers (the decoder reverses them);
  #   resnet: hidden_sizes[-1] is the width of the encoder's last Dense layer
  config.model.activation = "tanh"  # tanh | relu | elu | gelu | swish
  config.model.channels = (32, 64)  # resnet: channels per stage; each stage halves the resolution
  config.model.blocks_per_stage = 1  # resnet: residual blocks per stage
  config.model.latent_dim = 8  # vae, cvae
  config.model.latent_dims = (16, 8)  # hvae: latent sizes per layer, bottom (next to x) to top
  config.model.upper_hidden_sizes = (128, 128)  # hvae: hidden layers of the nets between layers
  config.model.inference = "top_down"  # hvae: top_down (Ladder VAE) | bottom_up (Burda et al.)
  config.model.posterior = "diag"  # diag | full_cov | mixture | planar_flow | iaf
  config.model.num_flows = 2  # planar_flow, iaf: flow steps
  config.model.num_components = 4  # mixture posterior (equal weights) and mixture prior
  config.model.prior = "standard_normal"  # standard_normal | mixture | vamp
  config.model.num_pseudo_inputs = 50  # vamp: learned pseudo-inputs
  config.model.likelihood = "bernoulli"  # bernoulli | gaussian | discretized_logistic | categorical256
  config.model.likelihood_scale = 0.0  # gaussian: fixed scale; 0 = learned per-dimension scale
  config.model.num_mixtures = 5  # discretized_logistic: logistics per pixel
  config.model.num_bits = 8  # discretized_logistic, categorical256: 2^num_bits pixel levels
  config.model.num_classes = 10  # cvae: label classes
  config.model.output_bias = 0.0  # initial decoder output bias, one value for every pixel
  config.model.output_bias_from_data = False  # bernoulli, mlp: per-pixel logit of the train mean
  config.model.num_codes = 64  # vqvae: codebook size (model.latent_dim is the code size)
  config.model.commitment_cost = 0.25  # vqvae: beta of the commitment term |z_e - sg(e)|^2
  config.model.codebook_update = "ema"  # vqvae: ema (moving averages) | loss (codebook loss term)
  config.model.codebook_decay = 0.99  # vqvae, ema: decay of the moving averages
  config.model.codebook_epsilon = 1e-5  # vqvae, ema: Laplace smoothing of the code counts
  config.model.codebook_init = "kmeans"  # vqvae, ema: random | sample | kmeans (first batch)
  config.model.dead_code_steps = 100  # vqvae: a code unused for this many steps is dead
  config.model.restart_dead_codes = True  # vqvae, ema: re-seed dead codes from encoder outputs
  config.model.cosine_codes = False  # vqvae: L2-normalized codes and encoder outputs
  config.model.codebook_chunk_size = 0  # vqvae: nearest-code search over chunks of this many
  #   codes (memory [B * h * w, chunk], for large codebooks); 0 = the whole codebook at once
  config.model.first_stage_workdir = ""  # vq_prior: workdir of the trained vqvae (frozen)
  config.model.code_prior_layers = 2  # vq_prior: layers of the causal transformer over codes
  config.model.code_prior_width = 64  # vq_prior: its width
  config.model.code_prior_heads = 4  # vq_prior: its attention heads

  config.train = ml_collections.ConfigDict()
  config.train.objective = "elbo"  # elbo | iwae
  config.train.num_samples = 1  # K samples of z per example in the objective
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
  config.train.warmup_steps = 0  # linear warm-up from 0 to train.learning_rate
  config.train.decay = "constant"  # constant | cosine | linear, from warm-up end to num_steps
  config.train.end_learning_rate_fraction = 0.0  # cosine/linear: final rate / learning_rate
  config.train.clip_grad_norm = 0.0  # clip the gradient to this global norm; 0 = off
  config.train.accumulate_steps = 1  # micro-batches per update (gradient accumulation)
  config.train.ema_decay = 0.0  # EMA of params, used by eval and sampling; 0 = off (e.g. 0.999)
  config.train.skip_grad_norm = 0.0  # also skip updates whose gradient norm exceeds this; 0 = off
  config.train.max_consecutive_skips = 20  # past this many skipped updates in a row: stop
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
  """Shrinks any config in place to a run of seconds: few steps, small nets, small K."""
  config.model.hidden_sizes = (32,)
  config.model.upper_hidden_sizes = (32,)
  config.model.channels = tuple(min(c, 8) for c in config.model.channels)
  config.model.blocks_per_stage = 1
  config.model.latent_dim = min(config.model.latent_dim, 16)
  config.model.num_pseudo_inputs = min(config.model.num_pseudo_inputs, 10)
  config.train.batch_size = 16
  config.train.num_steps = 20
  config.train.log_every = 5
  config.train.checkpoint_every = 10
  config.eval.num_samples = 10
  config.eval.chunk_size = 5
  config.eval.batch_size = 64
  return config


_CHOICES = {
    "data.source": DATA_SOURCES,
    "data.binarize": BINARIZATIONS,
    "data.scale": SCALES,
    "model.kind": MODEL_KINDS,
    "model.likelihood": LIKELIHOODS,
    "model.network": NETWORKS,
    "model.activation": ACTIVATIONS,
    "model.posterior": POSTERIORS,
    "model.prior": PRIORS,
    "model.inference": HVAE_INFERENCE,
    "train.objective": OBJECTIVES,
}
_POSITIVE = (
    "data.num_threads", "model.latent_dim", "train.num_samples", "train.batch_size",
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


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `UserError` naming the first key that is unknown, of the wrong type or out of range."""
  schema = dict(_flatten(get_config()))
  values = dict(_flatten(config))
  for key, value in values.items():
    if key not in schema:
      raise UserError(f"unknown config key '{key}'; known keys under its section: "
                      f"{', '.join(k for k in schema if k.rsplit('.', 1)[0] == key.rsplit('.', 1)[0])}")
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
  if not values["model.hidden_sizes"] or any(
      not isinstance(h, int) or h <= 0 for h in values["model.hidden_sizes"]):
    raise UserError(f"config key 'model.hidden_sizes' must be a non-empty tuple of positive ints, "
                    f"got {values['model.hidden_sizes']!r}")
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
  _validate_model(values)
  if values["data.source"] == "toy" and values["data.binarize"] != "none":
    raise UserError("the toy data are real-valued: set data.binarize='none'")
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
  """The optimizer, schedule, accumulation, EMA, skipping and step-chunking keys of `train`."""
  for key, choices in _TRAIN_CHOICES.items():
    if values[key] not in choices:
      raise UserError(f"config key '{key}' is {values[key]!r}; choose one of {', '.join(choices)}")
  for key in ("train.accumulate_steps", "train.steps_per_call", "train.fsdp_devices"):
    if values[key] < 1:
      raise UserError(f"config key '{key}' must be >= 1, got {values[key]!r}")
  for key in ("train.weight_decay", "train.warmup_steps", "train.clip_grad_norm",
              "train.skip_grad_norm", "train.max_consecutive_skips", "train.keep_every"):
    if values[key] < 0:
      raise UserError(f"config key '{key}' must be >= 0 (0 turns it off), got {values[key]!r}")
  for key in ("train.ema_decay", "train.end_learning_rate_fraction"):
    if not 0 <= values[key] < 1 + (key == "train.end_learning_rate_fraction"):
      raise UserError(f"config key '{key}' must be in [0, 1{']' if 'fraction' in key else ')'}, "
                      f"got {values[key]!r}")
  if values["train.weight_decay"] and values["train.optimizer"] != "adamw":
    raise UserError("config key 'train.weight_decay' needs train.optimizer='adamw'")
  if values["train.warmup_steps"] >= values["train.num_steps"] and values["train.decay"] != "constant":
    raise UserError(f"train.warmup_steps={values['train.warmup_steps']} leaves no steps to decay "
                    f"over (train.num_steps={values['train.num_steps']}); lower it")
  if values["train.image_every"] < 0 or values["train.image_every"] % values["train.log_every"]:
    raise UserError(f"config key 'train.image_every' must be 0 (with each checkpoint) or a "
                    f"multiple of train.log_every={values['train.log_every']}, got "
                    f"{values['train.image_every']}")
  if values["train.image_temperature"] < 0 or (values["train.image_temperature"] != 1 and (
      values["model.kind"] not in ("vae", "cvae") or values["model.prior"] != "standard_normal")):
    raise UserError(f"config key 'train.image_temperature' must be >= 0, and other than 1 only "
                    f"for model.kind 'vae' or 'cvae' with model.prior='standard_normal' (it scales "
                    f"N(0, I) noise); got {values['train.image_temperature']}")
  if values["train.beta"] < 0 or values["train.kl_warmup_steps"] < 0:
    raise UserError(f"config keys 'train.beta' and 'train.kl_warmup_steps' must be >= 0, got "
                    f"{values['train.beta']} and {values['train.kl_warmup_steps']}")
  if ((values["train.beta"] != 1 or values["train.kl_warmup_steps"])
      and values["train.objective"] != "elbo"):
    raise UserError(f"train.beta and train.kl_warmup_steps weight the KL of the ELBO; with "
                    f"train.objective='{values['train.objective']}' keep beta=1 and no warm-up")
  if values["train.batch_size"] % values["train.accumulate_steps"]:
    raise UserError(f"train.batch_size={values['train.batch_size']} must be divisible by "
                    f"train.accumulate_steps={values['train.accumulate_steps']}")


def _validate_model(values: dict) -> None:
  """The `model` section's ranges and the combinations of model, data and objective that work."""
  for key in ("model.num_flows", "model.num_components", "model.num_pseudo_inputs",
              "model.num_mixtures", "model.num_classes", "model.blocks_per_stage"):
    if not values[key] > 0:
      raise UserError(f"config key '{key}' must be positive, got {values[key]!r}")
  for key in ("model.latent_dims", "model.upper_hidden_sizes", "model.channels"):
    if not values[key] or any(not isinstance(v, int) or v <= 0 for v in values[key]):
      raise UserError(f"config key '{key}' must be a non-empty tuple of positive ints, "
                      f"got {values[key]!r}")
  if values["model.likelihood_scale"] < 0:
    raise UserError(f"config key 'model.likelihood_scale' must be >= 0 (0 = learned), got "
                    f"{values['model.likelihood_scale']!r}")
  if not 1 <= values["model.num_bits"] <= 8:
    raise UserError(f"config key 'model.num_bits' must be in 1..8, got {values['model.num_bits']}")
  kind = values["model.kind"]
  if kind == "hvae" and len(values["model.latent_dims"]) < 2:
    raise UserError("model.kind='hvae' needs at least two stochastic layers: set "
                    "model.latent_dims to a tuple of two or more sizes")
  if kind == "hvae" and (values["model.posterior"], values["model.prior"]) != (
      "diag", "standard_normal"):
    raise UserError("model.kind='hvae' builds its own top-down posterior and prior: set "
                    "model.posterior='diag' and model.prior='standard_normal'")
  if values["model.prior"] == "vamp" and values["model.posterior"] in ("planar_flow", "iaf"):
    raise UserError("model.prior='vamp' evaluates q(z | pseudo-input) in closed form: use "
                    "model.posterior diag, full_cov or mixture with it")
  if values["model.prior"] == "vamp" and kind == "cvae":
    raise UserError("model.prior='vamp' is not available for model.kind='cvae' (its pseudo-inputs "
                    "have no labels): use model.prior='standard_normal' or 'mixture'")
  if kind == "toy" and values["data.source"] != "toy":
    raise UserError("model.kind='toy' models the 1-D toy data: set data.source='toy'")
  if (kind == "toy") != (values["train.objective"] == "exact_elbo"):
    raise UserError("train.objective='exact_elbo' (enumeration over z) is the toy model's "
                    "objective: use it exactly when model.kind='toy'")
  if kind in ("vqvae", "vq_prior"):
    _validate_vq(values)
  if values["model.output_bias_from_data"] and not (
      kind in ("vae", "cvae", "hvae") and values["model.network"] == "mlp"
      and values["model.likelihood"] == "bernoulli"):
    raise UserError("model.output_bias_from_data=True sets one Bernoulli logit per pixel, which "
                    "needs model.kind vae, cvae or hvae with model.network='mlp' and "
                    "model.likelihood='bernoulli'; set it to False (model.output_bias sets one "
                    "value for all pixels)")
  if (values["model.likelihood"] in ("discretized_logistic", "categorical256")
      and values["data.num_bits"] and values["data.num_bits"] != values["model.num_bits"]):
    raise UserError(f"data.num_bits={values['data.num_bits']} but model.num_bits="
                    f"{values['model.num_bits']}: the likelihood's pixel levels must be the data's; "
                    f"set both to the same value")


def _validate_vq(values: dict) -> None:
  """The VQ-VAE's and its code prior's keys."""
  for key, choices in (("model.codebook_update", ("ema", "loss")),
                       ("model.codebook_init", ("random", "sample", "kmeans"))):
    if values[key] not in choices:
      raise UserError(f"config key '{key}' is {values[key]!r}; choose one of {', '.join(choices)}")
  for key in ("model.num_codes", "model.dead_code_steps", "model.codebook_epsilon",
              "model.code_prior_layers", "model.code_prior_width", "model.code_prior_heads"):
    if not values[key] > 0:
      raise UserError(f"config key '{key}' must be positive, got {values[key]!r}")
  if values["model.commitment_cost"] < 0 or not 0 < values["model.codebook_decay"] < 1:
    raise UserError(f"config keys 'model.commitment_cost' (>= 0) and 'model.codebook_decay' (in "
                    f"(0, 1)) are {values['model.commitment_cost']!r} and "
                    f"{values['model.codebook_decay']!r}")
  chunk = values["model.codebook_chunk_size"]
  if chunk < 0 or (chunk and values["model.num_codes"] % chunk):
    raise UserError(f"config key 'model.codebook_chunk_size' must be 0 (whole codebook) or divide "
                    f"model.num_codes={values['model.num_codes']}, got {chunk}")
  if values["model.code_prior_width"] % values["model.code_prior_heads"]:
    raise UserError(f"model.code_prior_width={values['model.code_prior_width']} must be divisible "
                    f"by model.code_prior_heads={values['model.code_prior_heads']}")
  if values["model.codebook_update"] == "loss" and (
      values["model.restart_dead_codes"] or values["model.codebook_init"] != "random"):
    raise UserError("model.codebook_update='loss' trains the codebook by gradient; data "
                    "initialization and dead-code restarts need 'ema': set "
                    "model.codebook_init='random' and model.restart_dead_codes=False, or use 'ema'")
  if values["train.accumulate_steps"] != 1:
    raise UserError("the VQ-VAE's codebook statistics are those of the whole batch: use "
                    "train.accumulate_steps=1 with model.kind 'vqvae' or 'vq_prior'")
  if values["model.kind"] == "vq_prior" and not values["model.first_stage_workdir"]:
    raise UserError("model.kind='vq_prior' learns a prior over the codes of a trained VQ-VAE: set "
                    "model.first_stage_workdir to that run's --workdir")


def save_config(config: ml_collections.ConfigDict, path: str) -> None:
  """Writes the resolved config as JSON (tuples become lists); `path` may be local or gs://.
  Written to a temporary file and renamed, so a killed process never leaves a half-written one."""
  temporary = epath.Path(path + ".tmp")
  temporary.write_text(config.to_json(indent=2) + "\n")
  temporary.replace(path)


def load_config(path: str) -> ml_collections.ConfigDict:
  """The config saved by `save_config`, validated, with lists turned back into tuples."""
  import json

  try:
    values = json.loads(epath.Path(path).read_text())
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

  config = restore(get_config(), values)
  validate(config)
  return config
