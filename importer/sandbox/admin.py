"""The sandbox's admin endpoints under ``/_sandbox``: no key needed, never counted in stats.

GET|POST /_sandbox/faults        show or change the faults (an outage counts from now)
GET      /_sandbox/stats         requests by endpoint and status, creates, 200 hits
POST     /_sandbox/reset         forget engagements, stats, faults, added keys, contacts
POST     /_sandbox/keys          accept a key with scopes
DELETE   /_sandbox/keys/{key}    revoke a key
GET      /_sandbox/engagements   every engagement, all fields
POST     /_sandbox/contacts      make more contact ids known
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from importer.rows import contract
from importer.rows.contract import FieldProblem
from importer.sandbox.faults import FaultsInvalid
from importer.sandbox.params import json_object
from importer.sandbox.problems import Problem, invalid
from importer.sandbox.state import SandboxState


class AdminApi:
    """The admin endpoints, over one sandbox's state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def faults(self, request: Request) -> Response:
        """GET shows the faults; POST changes any of their fields (outage counted from now)."""
        if request.method == "POST":
            try:
                self.state.faults.update(await json_object(request))
            except FaultsInvalid as error:
                raise invalid(error.problems) from None
        return JSONResponse(self.state.faults.as_dict())

    async def stats(self, request: Request) -> Response:
        """Requests by endpoint and status, engagements, creates and 200 hits per external_id."""
        return JSONResponse(self.state.stats.as_dict(len(self.state.store)))

    async def reset(self, request: Request) -> Response:
        """Forget engagements, stats, faults, added keys and contacts."""
        self.state.reset()
        return JSONResponse({"reset": True})

    async def add_key(self, request: Request) -> Response:
        """Accept a key (or change its scopes): ``{"key": K, "scopes": [...]}``."""
        body = await json_object(request)
        key, scopes = body.get("key"), body.get("scopes", list(contract.ALL_SCOPES))
        if not isinstance(key, str) or not key:
            raise invalid([FieldProblem("key", "required", "key must be a non-empty string")])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise invalid([FieldProblem("scopes", "type", "scopes must be a list of strings")])
        self.state.keys[key] = frozenset(scopes)
        return JSONResponse({"key": key, "scopes": sorted(scopes)})

    async def revoke_key(self, request: Request) -> Response:
        """Stop accepting a key: its next request answers 401."""
        key = str(request.path_params["key"])
        if self.state.keys.pop(key, None) is None:
            raise Problem(404, "Not Found", "No such key")
        return JSONResponse({"revoked": key})

    async def engagements(self, request: Request) -> Response:
        """Every engagement with all its fields, what was sent included, oldest first."""
        return JSONResponse([self.state.admin_view(e) for e in self.state.store.all()])

    async def add_contacts(self, request: Request) -> Response:
        """Make more contact ids known: ``{"contact_ids": [...]}``."""
        body = await json_object(request)
        ids = body.get("contact_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            message = "contact_ids must be a list of strings"
            raise invalid([FieldProblem("contact_ids", "type", message)])
        self.state.added_contacts.update(ids)
        return JSONResponse({"added": ids})
