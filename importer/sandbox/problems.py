"""Error answers: one exception, rendered as ``application/problem+json`` (RFC 9457).

Handlers raise ``Problem``; the app's exception handlers turn it, Starlette's own
HTTPException (404 for an unknown path, 405) and any crash into the same document:

    {"type": ..., "title": "Unprocessable Entity", "status": 422,
     "detail": "Validation failed: title", "request_id": "req_...",
     "errors": [{"field": "title", "code": "too_long", "message": "..."}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from importer.rows.contract import FieldProblem

PROBLEM_JSON = "application/problem+json"
CLIENT_CLOSED = 499  # nginx's status for a request the client abandoned; never delivered


class Problem(Exception):
    """An error answer, rendered as application/problem+json.

    >>> invalid([FieldProblem("title", "required", "title is required")]).detail
    'Validation failed: title'
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        super().__init__(detail)


def invalid(problems: Sequence[FieldProblem]) -> Problem:
    """The 422 for a request whose fields break the documented rules."""
    fields = ", ".join(dict.fromkeys(p.field for p in problems))
    return Problem(422, "Unprocessable Entity", f"Validation failed: {fields}", problems)


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    """The problem+json answer for a Problem."""
    request_id = request.scope.get("sandbox.request_id", "")
    body = {
        "type": f"https://sandbox.askelephant.invalid/problems/{problem.status}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "request_id": request_id,
        "errors": [
            {"field": p.field, "code": p.code, "message": p.message} for p in problem.errors
        ],
    }
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(request, Problem(exc.status_code, "Error", str(exc.detail)))


async def _crash_handler(request: Request, exc: Exception) -> Response:
    detail = f"The sandbox failed: {type(exc).__name__}: {exc}"
    return problem_response(request, Problem(500, "Internal Server Error", detail))


EXCEPTION_HANDLERS: Mapping[type[Exception], ExceptionHandler] = {
    Problem: _problem_handler,
    HTTPException: _http_exception_handler,
    Exception: _crash_handler,
}
"""What the app factory hands Starlette: every error becomes a problem+json answer."""
