"""A Letzshop-compatible GraphQL server for development, demos and tests.

Django-free: the schema in `schema.graphql` (copied from the design docs, names as
Letzshop spells them), resolvers written with ariadne, state in memory behind a lock.
See `server.py`; run it with `python -m letzshop_dev --port 8765 --seed`.
"""

from letzshop_dev.server import DEFAULT_API_KEY, DevServer, LetzshopState, make_app, serve

__all__ = ["DEFAULT_API_KEY", "DevServer", "LetzshopState", "make_app", "serve"]
