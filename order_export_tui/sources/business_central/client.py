"""Business Central API v2.0 over HTTP: the app's token, OData paging and clear refusals.

- Sign-in: OAuth 2.0 client credentials against the Microsoft identity platform
  (`token_url`, by default `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`),
  scope `https://api.businesscentral.dynamics.com/.default`. The token is renewed ahead of
  its expiry (a tenth of its lifetime, at most five minutes, before it lapses), and once more
  should Business Central answer 401 to a token that was not brand new (revoked, or a clock
  that disagrees): runs longer than a token's life never fail on it.
- Every request, the token's included, goes through the run's `Retrier`: transport errors, 429
  (with `Retry-After`) and 5xx are retried within the task's retry budget.
- Reads are server-driven pages: `Prefer: odata.maxpagesize=<page size>`, then each
  `@odata.nextLink` as given (only ever to the same host: the link carries the bearer token),
  requested while the caller works on the page before it. A link that repeats one already
  followed in this read would page forever: the read fails, naming the link's page.
  `Data-Access-Intent: ReadOnly` lets Business Central serve them from a read-only replica
  (which may lag the primary by moments: what a run misses, the next one reads).
- A page that is not Business Central's JSON (a proxy's web page, a truncated or absurdly
  nested body) is a transient failure, retried like an outage.
- What cannot be retried becomes a `BusinessCentralError` (a `SourceError`) that names what to
  fix: a wrong secret, tenant or client id (the identity platform's AADSTS code), an app that
  Business Central does not know (401), lacks permissions for (403), or a wrong environment
  or company (404). Neither the client secret nor a token is ever part of a message, nor any
other credential Business Central echoes (`transport.redaction`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from order_export_tui.settings import Settings, secret_value
from order_export_tui.sources.base import SourceError
from order_export_tui.transport.answers import read_json
from order_export_tui.transport.http import DEFAULT_REQUEST_TIMEOUT_SECONDS, request_timeout, send
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import Retrier

SCOPE = "https://api.businesscentral.dynamics.com/.default"
IDENTITY_PLATFORM_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
DEFAULT_PAGE_SIZE = 1000  # Business Central online serves at most 20,000 entities a page
MAX_RENEWAL_MARGIN_SECONDS = 300.0
_QUERY_SAFE = "$,()':"  # OData's punctuation stays readable in the query string
_MAX_TEXT = 300

# The identity platform's AADSTS codes, by what the operator has to fix.
_SECRET_CODES = frozenset({7000215, 7000222})
_TENANT_CODES = frozenset({90002, 900023, 90023})
_CLIENT_CODES = frozenset({700016})


class BusinessCentralError(SourceError):
    """Business Central or the identity platform refused; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Connection:
    """Where Business Central is and who the app is (`[erp.business_central]`)."""

    base_url: str
    company_id: str
    tenant_id: str
    client_id: str
    client_secret_env: str
    token_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Connection:
        bc = settings.erp.business_central
        tenant = bc.tenant_id.strip()
        return cls(
            base_url=bc.base_url.strip().rstrip("/"),
            company_id=bc.company_id.strip(),
            tenant_id=tenant,
            client_id=bc.client_id.strip(),
            client_secret_env=bc.client_secret_env,
            token_url=bc.token_url.strip()
            or IDENTITY_PLATFORM_TOKEN_URL.format(tenant=quote(tenant, safe="")),
        )

    @property
    def company_url(self) -> str:
        return f"{self.base_url}/companies({self.company_id})"

    def company_url_at(self, route: str) -> str:
        """The company below another API route of the same environment (a custom API page's
        `publisher/group/version`); "" is the standard API of `base_url`."""
        if not route:
            return self.company_url
        environment, found, _ = self.base_url.rpartition("/api/")
        root = environment if found else self.base_url
        return f"{root}/api/{route}/companies({self.company_id})"


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float  # monotonic time


class BusinessCentralClient:
    """One run's HTTP conversation with one Business Central company."""

    def __init__(
        self,
        connection: Connection,
        retrier: Retrier,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be 1 or more (got {page_size})")
        self.connection = connection
        self.page_size = page_size
        self.timeout_seconds = timeout_seconds
        self.requests = 0  # requests sent, the token's included
        self._retrier = retrier
        self._clock = clock
        self._http: httpx.AsyncClient | None = None
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._secret: str | None = None

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    # --- reads -----------------------------------------------------------------------------

    async def pages(
        self, path: str, params: Mapping[str, str], what: str, *, route: str = ""
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The entities of `companies(<id>)/<path>`, one server page at a time. The next page
        is requested as soon as its link is known, so it downloads while the caller works on
        this one: at most one page ahead."""
        prefer = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        url = self._with_query(f"{self.connection.company_url_at(route)}/{path}", params)
        page = 1
        followed = {url: 1}  # link -> the page it was followed for
        ahead: asyncio.Future[Any] | None = asyncio.ensure_future(
            self.get_json(url, f"{what} (page 1)", headers=prefer)
        )
        try:
            while ahead is not None:
                body, ahead = await ahead, None
                value = body.get("value") if isinstance(body, dict) else None
                if not isinstance(value, list):
                    raise BusinessCentralError(
                        f"Business Central: {what}: the answer holds no list"
                    )
                link = self._next_link(body, what)
                if link is not None:
                    if link in followed:
                        raise BusinessCentralError(
                            f"Business Central: {what}: the next-page link of page {page} leads"
                            f" back to page {followed[link]}; paging would never end (a"
                            " Business Central or proxy fault); the run stops here"
                        )
                    page += 1
                    followed[link] = page
                    ahead = asyncio.ensure_future(
                        self.get_json(link, f"{what} (page {page})", headers=prefer)
                    )
                yield [entity for entity in value if isinstance(entity, dict)]
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead  # abandoned: whatever it ended with no longer matters

    async def count(self, path: str, params: Mapping[str, str], what: str) -> int:
        url = self._with_query(f"{self.connection.company_url}/{path}/$count", params)
        response = await self.get(url, what, headers={"Accept": "text/plain"})
        text = response.text.strip().lstrip("\ufeff")
        if not text.isdigit():
            raise BusinessCentralError(f"Business Central: {what}: not a count: {text[:40]!r}")
        return int(text)

    async def get_json(
        self, url: str, what: str, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        """A 200's JSON; any other body is retried as a transient failure."""

        async def attempt() -> Any:
            response = await self._get_once(url, what, headers)
            return read_json(response, f"Business Central {what}")

        return await self._retrier.call(what, attempt)

    async def get(
        self, url: str, what: str, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """One GET through the retrier, with a valid token; raises for anything but 200."""
        return await self._retrier.call(what, lambda: self._get_once(url, what, headers))

    async def _get_once(
        self, url: str, what: str, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        token, fresh = await self._access_token()
        response = await self._send_get(url, token, headers, what)
        if response.status_code == 401 and not fresh:
            self._forget_token(token)
            token, _ = await self._access_token()
            response = await self._send_get(url, token, headers, what)
        if response.status_code != 200:
            raise self._refusal(response, what)
        return response

    # --- the token -------------------------------------------------------------------------

    async def _access_token(self) -> tuple[str, bool]:
        """(token, whether it was obtained just now)."""
        token = self._token
        if token is not None and self._clock() < token.renew_at:
            return token.value, False
        async with self._token_lock:
            token = self._token
            if token is not None and self._clock() < token.renew_at:
                return token.value, False
            self._token = await self._retrier.call(
                "POST token (Microsoft identity platform)", self._request_token
            )
            return self._token.value, True

    def _forget_token(self, value: str) -> None:
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _request_token(self) -> _Token:
        connection = self.connection
        started = self._clock()
        form = {
            "grant_type": "client_credentials",
            "client_id": connection.client_id,
            "client_secret": self._client_secret(),
            "scope": SCOPE,
        }
        http = self._client()
        request = http.build_request("POST", connection.token_url, data=form)
        self.requests += 1
        response = await send(http, request, "POST token (Microsoft identity platform)")
        if response.status_code != 200:
            raise self._sign_in_refusal(response)
        return self._token_from(response, started)

    def _token_from(self, response: httpx.Response, started: float) -> _Token:
        try:
            body = orjson.loads(response.content)
            value, lifetime = body["access_token"], float(body["expires_in"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise BusinessCentralError(
                "Business Central sign-in: the token endpoint's answer holds no access_token"
                " and expires_in; check erp.business_central.token_url"
            ) from error
        if not isinstance(value, str) or not value:
            raise BusinessCentralError("Business Central sign-in: the access token is empty")
        margin = min(MAX_RENEWAL_MARGIN_SECONDS, lifetime / 10)
        return _Token(value, renew_at=started + lifetime - margin)

    def _client_secret(self) -> str:
        if self._secret is None:
            secret = secret_value(self.connection.client_secret_env)
            if secret is None:
                raise BusinessCentralError(
                    "erp.business_central.client_secret_env: environment variable"
                    f" {self.connection.client_secret_env} is not set"
                )
            self._secret = secret
        return self._secret

    # --- HTTP ------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=request_timeout(self.timeout_seconds),
                headers={"Accept": "application/json", "Data-Access-Intent": "ReadOnly"},
            )
        return self._http

    async def _send_get(
        self, url: str, token: str, headers: Mapping[str, str] | None, what: str
    ) -> httpx.Response:
        http = self._client()
        request = http.build_request(
            "GET", url, headers={**(headers or {}), "Authorization": f"Bearer {token}"}
        )
        self.requests += 1
        return await send(http, request, f"Business Central {what}")

    @staticmethod
    def _with_query(url: str, params: Mapping[str, str]) -> str:
        if not params:
            return url
        query = "&".join(
            f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in params.items()
        )
        return f"{url}?{query}"

    def _next_link(self, body: dict[str, Any], what: str) -> str | None:
        link = body.get("@odata.nextLink")
        if not link:
            return None
        if not isinstance(link, str) or _origin(link) != _origin(self.connection.base_url):
            raise BusinessCentralError(
                f"Business Central: {what}: refusing to follow a next-page link to another host"
            )
        return link

    # --- refusals --------------------------------------------------------------------------

    def _sign_in_refusal(self, response: httpx.Response) -> BusinessCentralError:
        connection = self.connection
        body = _json_object(response)
        error = self._redact(_clean(body.get("error")))
        description = str(body.get("error_description") or "").splitlines()[:1]
        description = self._redact(_clean(description))
        codes = {code for code in body.get("error_codes") or () if isinstance(code, int)}
        said = ": ".join(part for part in (error, description) if part)
        said = f"HTTP {response.status_code}" + (f", {said}" if said else "")
        if codes & _SECRET_CODES or (error == "invalid_client" and not codes & _CLIENT_CODES):
            hint = (
                f"the client secret in {connection.client_secret_env} is wrong or expired; it must"
                f" be the value (not the id) of a secret of app {connection.client_id}"
            )
        elif codes & _TENANT_CODES:
            hint = (
                f"tenant {connection.tenant_id!r} is unknown: check erp.business_central.tenant_id"
                " (and token_url)"
            )
        elif codes & _CLIENT_CODES or error == "unauthorized_client":
            hint = (
                f"app {connection.client_id!r} is not registered in that tenant: check"
                " erp.business_central.client_id and tenant_id"
            )
        else:
            hint = "check erp.business_central.tenant_id, client_id, token_url and the secret"
        return BusinessCentralError(f"Business Central sign-in failed ({said}): {hint}")

    def _refusal(self, response: httpx.Response, what: str) -> BusinessCentralError:
        connection = self.connection
        code, message = (self._redact(text) for text in odata_error(response))
        said = f"HTTP {response.status_code}" + (
            f", {': '.join(part for part in (code, message) if part)}" if code or message else ""
        )
        hints = {
            401: (
                f"Business Central does not accept the app's token: add app {connection.client_id}"
                " on the environment's 'Microsoft Entra Applications' page (state Enabled) and"
                " check that base_url is in tenant_id's tenant"
            ),
            403: (
                "the app lacks permissions in Business Central: give its Microsoft Entra"
                " application a permission set that reads sales documents and customers"
            ),
            404: (
                "check the environment in erp.business_central.base_url and"
                f" erp.business_central.company_id ({connection.company_id})"
            ),
        }
        hint = hints.get(response.status_code)
        text = f"Business Central: {what} failed ({said})" + (f"; {hint}" if hint else "")
        return BusinessCentralError(text)

    def _redact(self, text: str) -> str:
        """A server's text without the secret or the token, whatever it echoes."""
        return redact(text, self._secret, self._token.value if self._token else None)


def odata_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of Business Central's `{"error": {"code", "message"}}` answer."""
    error = _json_object(response).get("error")
    if not isinstance(error, dict):
        return "", ""
    return _clean(error.get("code")), _clean(error.get("message"))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except (orjson.JSONDecodeError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _clean(value: Any) -> str:
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    text = " ".join(str(value or "").split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
