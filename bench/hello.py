"""A hello-world ASGI app served the way the gateway is (uvicorn, same event loop and HTTP parser, no access
log): the floor of what any Python ASGI answer costs in CPU on this machine, measured in the same run."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import Receive, Scope, Send

BODY = b'{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}'
HEADERS = [(b"content-type", b"application/fhir+json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to start
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run("bench.hello:app", host="127.0.0.1", port=args.port, proxy_headers=False, access_log=False,
                log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
