"""The verifier's HTTP JSON API: a Starlette (ASGI) app, run by uvicorn (`sealcodes verifier serve`).

Routes stay thin: check the API key, read and validate the body, call the Verifier, map its
errors to HTTP in one place (`_error_response`). The app keeps no state of its own: every answer
comes from the database, so several instances can serve one PostgreSQL. The schema is written in
docs/verifier-api.json (OpenAPI 3.1) and served at /v1/openapi.json.

    POST /v1/records                    import one verifier record           -> 201 / 200
    POST /v1/verify                     {"account", "code"}                  -> 200 {"result", ...}
    GET  /v1/accounts/{account}         status                               -> 200
    POST /v1/accounts/{account}/revoke  {"label"?}                           -> 200
    GET  /v1/health                     no key needed                        -> 200
"""

from __future__ import annotations

import json
import logging
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InvalidInputError
from .core import ACCEPTED, LOCKED, THROTTLED, Verifier, VerifierConfigError
from .record import VerifierRecord
from .store import StoreError

log = logging.getLogger("sealcodes.verifier.service")

#: largest body accepted: a record of 100 codes is about 7 KiB
MAX_RECORD_BYTES = 64 * 1024
MAX_VERIFY_BYTES = 2 * 1024
MAX_SMALL_BYTES = 2 * 1024


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers


def _error_response(exc: Exception) -> JSONResponse:
    """Every failure becomes one JSON object {"error", "message"}; no traceback leaves the server."""
    if isinstance(exc, HttpError):
        return JSONResponse({"error": exc.error, "message": exc.message}, status_code=exc.status, headers=exc.headers)
    if isinstance(exc, InvalidInputError):
        return JSONResponse({"error": "invalid_input", "message": str(exc)}, status_code=400)
    if isinstance(exc, (StoreError, VerifierConfigError)):
        log.error("verifier store failure: %s", exc)
        return JSONResponse({"error": "unavailable", "message": "the verifier database is unavailable"},
                            status_code=503)
    log.error("unexpected failure (%s)", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
    return JSONResponse({"error": "internal", "message": "unexpected failure"}, status_code=500)


async def _read_json(request: Request, limit: int) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HttpError(415, "unsupported_media_type", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, "invalid_input", "bad Content-Length")
        if int(declared) > limit:
            raise HttpError(413, "too_large", f"the body may be at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HttpError(413, "too_large", f"the body may be at most {limit} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HttpError(400, "invalid_json", "the body is not JSON") from None
    finally:
        body[:] = bytes(len(body))
    if not isinstance(data, dict):
        raise HttpError(400, "invalid_input", "the body must be a JSON object")
    return data


def _string(data: dict, key: str, limit: int, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise HttpError(400, "invalid_input", f"field {key!r} must be a non-empty string of at most {limit} characters")
    return value


def create_app(verifier: Verifier, openapi: bytes | None = None) -> Starlette:
    """The ASGI app around one Verifier (thread-safe; the blocking calls run in a thread pool)."""
    if openapi is None:
        openapi = _bundled_openapi()

    async def authorized(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "unauthorized", "an API key is needed: Authorization: Bearer <key>",
                            {"WWW-Authenticate": "Bearer"})
        key_id = await run_in_threadpool(verifier.check_api_key, token.strip())
        if key_id is None:
            raise HttpError(401, "unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
        return key_id

    def route(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # mapped in one place
                return _error_response(exc)
        return endpoint

    async def import_record(request: Request) -> Response:
        await authorized(request)
        data = await _read_json(request, MAX_RECORD_BYTES)
        record = VerifierRecord.from_dict(data)
        result = await run_in_threadpool(verifier.import_record, record)
        return JSONResponse({"account": result.account, "label": result.label, "epoch": result.epoch,
                             "imported": result.imported, "superseded_epochs": list(result.superseded_epochs)},
                            status_code=201 if result.imported else 200)

    async def verify(request: Request) -> Response:
        await authorized(request)
        data = await _read_json(request, MAX_VERIFY_BYTES)
        account = _string(data, "account", 256)
        code = _string(data, "code", 128)
        extra = set(data) - {"account", "code"}
        if extra:
            raise HttpError(400, "invalid_input", "unknown field in the body (allowed: account, code)")
        result = await run_in_threadpool(verifier.verify, account, code)
        body = {"result": result.outcome}
        if result.outcome == ACCEPTED:
            body.update(label=result.label, epoch=result.epoch, code_number=result.code_number,
                        remaining=result.remaining)
        elif result.retry_after:
            body["retry_after"] = result.retry_after
        headers = {"Retry-After": str(max(1, int(result.retry_after + 0.999)))} \
            if result.outcome == THROTTLED and result.retry_after else None
        return JSONResponse(body, headers=headers)

    async def status(request: Request) -> Response:
        await authorized(request)
        state = await run_in_threadpool(verifier.status, request.path_params["account"])
        return JSONResponse({
            "account": state.account, "locked": state.locked, "failures": state.failures,
            "retry_after": state.retry_after, "remaining": state.remaining, "few_left": state.few_left,
            "sets": [{"label": s.label, "epoch": s.epoch, "format": s.format, "count": s.count,
                      "remaining": s.remaining, "fingerprint": s.fingerprint} for s in state.sets],
        })

    async def revoke(request: Request) -> Response:
        await authorized(request)
        data = await _read_json(request, MAX_SMALL_BYTES)
        label = _string(data, "label", 512, required=False)
        if set(data) - {"label"}:
            raise HttpError(400, "invalid_input", "unknown field in the body (allowed: label)")
        revoked = await run_in_threadpool(verifier.revoke, request.path_params["account"], label)
        return JSONResponse({"revoked": [{"label": lbl, "epoch": epoch} for lbl, epoch in revoked]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def schema(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not_found", "message": "no such endpoint"}, status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "method_not_allowed", "message": "method not allowed"}, status_code=405)

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error_response(exc)

    routes = [
        Route("/v1/records", route(import_record), methods=["POST"]),
        Route("/v1/verify", route(verify), methods=["POST"]),
        Route("/v1/accounts/{account}", route(status), methods=["GET"]),
        Route("/v1/accounts/{account}/revoke", route(revoke), methods=["POST"]),
        Route("/v1/health", route(health), methods=["GET"]),
        Route("/v1/openapi.json", route(schema), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed, 500: server_error})


def _bundled_openapi() -> bytes:
    try:
        return resources.files("sealcodes.verifier").joinpath("openapi.json").read_bytes()
    except (FileNotFoundError, OSError):
        return b'{"error": "not_found", "message": "the API schema is in docs/verifier-api.json"}'
