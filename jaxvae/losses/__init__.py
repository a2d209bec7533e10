"""Per-example objectives: every function returns one value per example, never a batch mean."""

from jaxvae.losses.bounds import bits_per_dim, elbo, iwae_bound

__all__ = ["bits_per_dim", "elbo", "iwae_bound"]
