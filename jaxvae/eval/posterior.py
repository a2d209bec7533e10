"""Diagnostics of the amortized posterior, and its per-example refinement (the amortization gap).

Both need the posterior's parameters, so they apply to models whose `encode(x)` returns a diagonal
Gaussian `(mean [B, L], log_var [B, L])`; for any other model `gaussian_posterior_problem` says why
they are unavailable, and the log p(x) evaluation itself is unaffected.
"""

import inspect
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvae import distributions as D
from jaxvae import losses

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016), Sec. 5.2.


def encode(model: nn.Module, params: Any, x: jax.Array, labels: jax.Array | None) -> Any:
  """`model.encode(x, labels)`, or `model.encode(x)` for a model whose encode takes no labels."""
  if "labels" in inspect.signature(type(model).encode).parameters:
    return model.apply({"params": params}, x, labels, method=model.encode)
  return model.apply({"params": params}, x, method=model.encode)


def gaussian_posterior_problem(model: nn.Module, params: Any, x: jax.Array,
                               labels: jax.Array) -> str | None:
  """None if `model.encode(x)` returns `(mean, log_var)` of equal shape `[B, L]`; else why not.

  Checked on shapes only (`jax.eval_shape`), so nothing is computed.
  """
  name = type(model).__name__
  if not hasattr(model, "encode"):
    return f"{name} has no encode method"
  if getattr(model, "prior", "standard_normal") != "standard_normal":
    return f"the KL per dimension is to N(0, I), but this {name}'s prior is {model.prior!r}"
  try:
    out = jax.eval_shape(lambda p, v, y: encode(model, p, v, y), params, x, labels)
  except Exception as e:  # A model's encode may fail in any way on this input.
    return f"{name}.encode failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
  ok = (isinstance(out, tuple) and len(out) == 2
        and all(isinstance(a, jax.ShapeDtypeStruct) for a in out)
        and out[0].shape == out[1].shape and len(out[0].shape) == 2
        and out[0].shape[0] == x.shape[0])
  if not ok:
    shapes = jax.tree.map(lambda a: getattr(a, "shape", a), out)
    return f"{name}.encode returns {shapes}, not a diagonal Gaussian (mean [B, L], log_var [B, L])"
  return None


def kl_per_dimension(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """`KL(N(mean_d, exp(log_var_d)) || N(0, 1))` per latent dimension: `[B, L] -> [B, L]`.

  The closed form of `distributions.kl_diag_gaussian_standard_normal`, one dimension at a time; it
  is the KL to the prior for models whose prior is N(0, I).
  """
  return D.kl_diag_gaussian_standard_normal(mean[..., None], log_var[..., None])


def diagnostics(posterior_means: np.ndarray, kl_per_dim: np.ndarray) -> dict:
  """Active units, KL per dimension and a collapse warning, from every example of a split.

  Args:
    posterior_means: `[N, L]` `E_q[z | x_n]`.
    kl_per_dim: `[N, L]` `KL(q(z_d | x_n) || p(z_d))`.

  Returns:
    `{num_latents, active_units, latent_activity [L], kl_per_dim [L], kl, warning}`: unit d is
    active when `A_d = Cov_x(E_q[z_d | x]) > 0.01` (Burda et al., 2016), `A_d` being the variance
    over the N examples (divisor N); `kl_per_dim` is the mean over examples; `warning` is a message
    when some dimension is inactive (posterior collapse), else None.
  """
  means = np.asarray(posterior_means, np.float64)
  activity = means.var(axis=0)
  kl = np.asarray(kl_per_dim, np.float64).mean(axis=0)
  active = int(np.sum(activity > ACTIVE_UNIT_THRESHOLD))
  warning = None
  if active < activity.size:
    collapsed = np.flatnonzero(activity <= ACTIVE_UNIT_THRESHOLD)
    warning = (f"posterior collapse: {activity.size - active} of {activity.size} latent dimensions "
               f"are inactive (Cov_x(E_q[z_d]) <= {ACTIVE_UNIT_THRESHOLD}; dimensions "
               f"{', '.join(map(str, collapsed[:20]))}{' ...' if collapsed.size > 20 else ''}) and "
               f"carry {kl[collapsed].sum():.4f} of the {kl.sum():.4f} nats of KL")
  return {"num_latents": int(activity.size), "active_units": active,
          "latent_activity": [float(a) for a in activity], "kl_per_dim": [float(k) for k in kl],
          "kl": float(kl.sum()), "warning": warning}


def with_posterior(posterior: tuple[jax.Array, jax.Array]):
  """A context in which the model's own `encode` returns `posterior`, not its encoder's output.

  Model-agnostic: `log_weights` of any model that gets its posterior from `self.encode(x)` then
  draws from and scores `posterior`. Only the top-level module's `encode` is replaced.
  """
  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "encode" and context.module.scope.path == ():
      return posterior
    return next_fun(*args, **kwargs)

  return nn.intercept_methods(interceptor)


def refine_posterior(
    log_weights_fn, posterior: tuple[jax.Array, jax.Array], example_keys: jax.Array, *,
    num_steps: int, num_samples: int, learning_rate: float,
) -> tuple[jax.Array, jax.Array]:
  """Each example's own posterior parameters, fitted by gradient ascent on its own ELBO.

  Starting from the encoder's output, `num_steps` Adam steps on `sum_b ELBO_b(mean_b, log_var_b)`
  (each example's parameters get only their own ELBO's gradient), the ELBO estimated with
  `num_samples` reparameterized draws per step, drawn with `fold_in(example_key, step * S + s)`.
  Non-amortized (black-box) variational inference as in Cremer et al. (2018), "Inference
  Suboptimality in Variational Autoencoders": refined minus amortized ELBO is the amortization gap.

  Args:
    log_weights_fn: `(posterior, keys [S, B]) -> [S, B]` log weights under `posterior`.
    posterior: `(mean [B, L], log_var [B, L])` from the encoder.
    example_keys: `[B]` keys, one per example.

  Returns:
    The refined `(mean, log_var)`.
  """
  optimizer = optax.adam(learning_rate)
  posterior = jax.tree.map(jax.lax.stop_gradient, posterior)

  def negative_elbo(post, step):
    keys = losses.sample_keys(example_keys, step * num_samples + jnp.arange(num_samples))
    return -jnp.sum(losses.elbo(log_weights_fn(post, keys)))

  def update(carry, step):
    post, opt_state = carry
    grads = jax.grad(negative_elbo)(post, step)
    updates, opt_state = optimizer.update(grads, opt_state, post)
    return (optax.apply_updates(post, updates), opt_state), None

  (posterior, _), _ = jax.lax.scan(update, (posterior, optimizer.init(posterior)),
                                   jnp.arange(num_steps))
  return posterior

