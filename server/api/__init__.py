"""HTTP routers. Each module exposes ``router`` and ``register(services)`` (its CapabilityStatement part)."""
