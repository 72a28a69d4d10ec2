"""Pieces that run inside the model server, not in the client: ``key_guard``, an API-key check for vLLM.

Standard library only, so ``pip install --no-deps`` of this project into the server's environment is enough.
"""
