"""``python -m tests.oidc_provider --port N --client-id ID --client-secret S --redirect-uri U``"""

from __future__ import annotations

import argparse

import uvicorn

from tests.oidc_provider.server import Client, create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="oidc_provider", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--redirect-uri", action="append", default=[])
    args = parser.parse_args()
    issuer = f"http://{args.host}:{args.port}"
    client = Client(args.client_id, args.client_secret, tuple(args.redirect_uri))
    uvicorn.run(create_app(issuer, [client]), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
