"""FHIR JSON on the wire: orjson, ``application/fhir+json``, ``_pretty``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

FHIR_JSON = "application/fhir+json"


def dumps(resource: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(resource, option=option)


class FhirResponse(Response):
    """A response whose body is FHIR JSON, rendered with orjson."""

    media_type = FHIR_JSON

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        *,
        pretty: bool = False,
        raw: bytes | None = None,
    ) -> None:
        self._pretty = pretty
        super().__init__(
            raw if raw is not None else content,
            status_code=status_code,
            headers=headers,
            media_type=f"{FHIR_JSON}; charset=utf-8",
        )

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if content is None:
            return b""
        return dumps(content, pretty=self._pretty)
