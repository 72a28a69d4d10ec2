"""Fixtures of the integration tests: ``scoring_backend`` runs an adapter test on the local tiny model and on the
loopback hosted server (see ``tests.support.adapters``)."""

from tests.support.adapters import scoring_backend

__all__ = ["scoring_backend"]
