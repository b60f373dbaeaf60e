"""Every error the API answers is JSON ``{"error": {"code", "message", ...}}``, mapped here once:
our own, daglake's, FastAPI's validation errors and Starlette's 404/405. No tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from daglake.errors import (
    DaglakeError,
    EnvironmentProblem,
    ProjectError,
    RunInProgressError,
    ValidationError,
)

log = logging.getLogger("daglake.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ApiError(Exception):
    """A client-visible failure: HTTP status, a stable code, a message and extra fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def from_daglake(exc: DaglakeError) -> ApiError:
    """A daglake error as the API answers it: the same code and fields, the right status."""
    status = 400
    if isinstance(exc, RunInProgressError):
        status = 409
    elif isinstance(exc, ValidationError | ProjectError):
        status = 422
    elif isinstance(exc, EnvironmentProblem):  # the server's machine refused (a full disk): not the client's fault
        status = 503
    body = exc.as_dict()["error"]
    assert isinstance(body, dict)
    fields = {k: v for k, v in body.items() if k not in ("code", "message")}
    return ApiError(status, str(body["code"]), str(body["message"]), **fields)


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.as_dict(), status_code=error.status, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc, headers)


async def _daglake_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DaglakeError)
    return error_response(from_daglake(exc))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(ApiError(exc.status_code, code, message), exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "location": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "")),
        }
        for error in exc.errors()
    ]
    first = problems[0] if problems else {"location": "request", "message": "invalid"}
    message = f"{first['location']}: {first['message']}"
    return error_response(ApiError(422, "invalid_request", message, problems=problems))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal_error", "internal error (details in the server log)"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(DaglakeError, _daglake_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
