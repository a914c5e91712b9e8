"""A bare FastAPI app that echoes JSON: the baseline every server benchmark is measured beside.

``POST /echo`` parses the body and returns it; ``GET /echo`` returns the last body (or a fixed one). Run it
with ``uvicorn bench._baseline:app``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI()
_STATE: dict[str, bytes] = {"last": b'{"resourceType":"Patient","id":"baseline"}'}


@app.post("/echo")
async def echo(request: Request) -> Response:
    body: Any = orjson.loads(await request.body())
    rendered = orjson.dumps(body)
    _STATE["last"] = rendered
    return Response(rendered, status_code=201, media_type="application/fhir+json")


@app.get("/echo")
async def echo_last() -> Response:
    return Response(_STATE["last"], media_type="application/fhir+json")
