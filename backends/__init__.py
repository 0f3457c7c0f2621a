"""Backend registry and backend strategies (noise sources, renewing synapses, seeding)."""

from .registry import (BACKENDS, BackendInfo, Capabilities, backend_info, installed_backends,
                       known_backends, load_backend, register_backend)

__all__ = ["BACKENDS", "BackendInfo", "Capabilities", "backend_info", "installed_backends",
           "known_backends", "load_backend", "register_backend"]
