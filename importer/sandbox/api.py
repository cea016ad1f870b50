"""The AskElephant engagements API, as the sandbox serves it.

    POST /v2/engagements                          create (idempotent on external_id)
    GET  /v2/engagements                          list, paginated
    GET  /v2/engagements/{engagement_id}          get, with ETag and ?expand=
    PUT  /v2/engagements/{engagement_id}/contacts replace contacts

Every handler first passes ``SandboxState.authorize`` (outage, key, rate limit, scope).
The routes themselves are laid out in ``sandbox.app``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from importer.rows import contract
from importer.sandbox.params import (
    decode_cursor,
    encode_cursor,
    json_object,
    parse_expand,
    parse_limit,
)
from importer.sandbox.problems import Problem, invalid
from importer.sandbox.rendering import etag_matches, etag_of
from importer.sandbox.state import SandboxState, require_scope
from importer.sandbox.store import Engagement, ExternalIdBusy
from importer.sandbox.validation import contact_id_problems, create_problems
from importer.sandbox.wire import DROP_HEADER


class EngagementsApi:
    """The four engagement endpoints, over one sandbox's state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def create_engagement(self, request: Request) -> Response:
        """POST /v2/engagements: 201 new, 200 existing (unchanged), 409 while in flight."""
        state = self.state
        state.authorize(request, contract.SCOPE_WRITE, "create engagements")
        body = await json_object(request)
        problems = create_problems(body)
        if "media_url" in body and not any(p.field == "media_url" for p in problems):
            media_problem = await state.media.check(body["media_url"])
            problems.extend([media_problem] if media_problem else [])
        if problems:
            raise invalid(problems)
        external_id: str = body["external_id"]
        try:
            existing = state.store.claim(external_id)
        except ExternalIdBusy:
            detail = f"An engagement with external_id {external_id!r} is still being created"
            raise Problem(409, "Conflict", detail) from None
        if existing is not None:
            state.stats.hits[external_id] += 1
            return JSONResponse(state.render(existing))
        try:
            plan = state.faults.plan_create()
            if plan.refuse:
                detail = "Simulated refusal (stray_429_rate); nothing was stored"
                raise Problem(429, "Too Many Requests", detail, headers={"Retry-After": "1"})
            await state.sleep(plan.latency_seconds)  # the synchronous media fetch
            if plan.fail:
                detail = "Simulated server error (fail_rate); nothing was stored"
                raise Problem(500, "Internal Server Error", detail)
            engagement = state.store.commit(state.new_engagement(body))
        finally:
            state.store.release(external_id)
        state.stats.created[external_id] += 1
        if plan.drop:
            return Response(headers={DROP_HEADER: "1"})
        return JSONResponse(state.render(engagement), status_code=201)

    async def get_engagement(self, request: Request) -> Response:
        """GET /v2/engagements/{id}: ETag, If-None-Match, expand with its scopes."""
        state = self.state
        scopes = state.authorize(request, contract.SCOPE_READ, "read engagements")
        expand = parse_expand(request.query_params.get("expand"))
        for name in expand:
            if name in contract.EXPAND_SCOPES:
                require_scope(scopes, contract.EXPAND_SCOPES[name], f"expand {name}")
        engagement = state.find(request)
        if engagement.is_private:
            require_scope(scopes, contract.SCOPE_PRIVATE_READ, "read private engagements")
        etag = etag_of(state.render(engagement, contract.EXPAND_VALUES))
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(state.render(engagement, expand), headers={"ETag": etag})

    async def list_engagements(self, request: Request) -> Response:
        """GET /v2/engagements: oldest first, ``limit`` 1..100, opaque ``cursor``."""
        state = self.state
        scopes = state.authorize(request, contract.SCOPE_READ, "list engagements")
        query = request.query_params
        limit = parse_limit(query.get("limit"))
        wanted = {
            "engagement_type": query.get("type"),
            "processing_status": query.get("processing_status"),
        }
        page: list[tuple[Engagement, dict[str, object]]] = []
        has_more = False
        for engagement in state.store.after(decode_cursor(query.get("cursor"))):
            if engagement.is_private and contract.SCOPE_PRIVATE_READ not in scopes:
                continue
            document = state.render(engagement)
            if any(value and document[name] != value for name, value in wanted.items()):
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append((engagement, document))
        next_cursor = encode_cursor(page[-1][0].seq) if has_more else None
        data = [document for _, document in page]
        return JSONResponse({"data": data, "has_more": has_more, "next_cursor": next_cursor})

    async def replace_contacts(self, request: Request) -> Response:
        """PUT /v2/engagements/{id}/contacts: the full set of contact ids; [] clears."""
        state = self.state
        state.authorize(request, contract.SCOPE_WRITE, "replace engagement contacts")
        body = await json_object(request)
        engagement = state.find(request)
        problems = contact_id_problems(body.get("contact_ids"), state.is_known_contact)
        if problems:
            raise invalid(problems)
        contact_ids = list(dict.fromkeys(body["contact_ids"]))
        state.store.replace_contacts(engagement.id, contact_ids, state.clock())
        return JSONResponse(state.render(engagement, ["contacts"]))
