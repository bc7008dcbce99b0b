"""`python -m letzshop_dev --port 8765 --seed [--key KEY]`: serve until interrupted."""

from __future__ import annotations

import argparse
import logging

from letzshop_dev.server import DEFAULT_API_KEY, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m letzshop_dev", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", action="store_true", help="load the three example shipments")
    parser.add_argument(
        "--key", default=DEFAULT_API_KEY, help="API key accepted for the fixture's vendors"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s letzshop-dev %(message)s")
    server = serve(args.host, args.port, seed=args.seed, api_key=args.key)
    logging.info("GraphQL on %s (key %r, %d shipments)", server.url, args.key, server.state.count())
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
