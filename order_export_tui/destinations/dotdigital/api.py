"""One Dotdigital API user's requests: the client, what counts as an answer, and what a
refusal stops.

Transport errors, 429, 5xx and the flat-rate limit's `ERROR_APIUSAGE_EXCEEDED` are transient
(the caller's retrier tries again). 401 and 403 fail at once with a message naming the
settings to check, and stop every later request of this client, so bad credentials never
cause a storm. A 2xx counts only when the spec documents it for the request and its body is
as the spec says (`answers`); any other answer must be Dotdigital's error document.
The password is named by its variable, never shown.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import httpx

from order_export_tui.destinations.base import DestinationError
from order_export_tui.destinations.dotdigital.answers import Check, platform_error
from order_export_tui.settings import secret_value
from order_export_tui.transport.answers import expect_status, not_the_platform, read_json
from order_export_tui.transport.http import request_timeout, retry_after_seconds, send
from order_export_tui.transport.retry import Retrier, TransientError

USAGE_EXCEEDED = "ERROR_APIUSAGE_EXCEEDED"
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Account:
    """Where the account lives and as whom it is used: the settings a refusal names."""

    base_url: str
    api_user: str
    password_env: str
    region: str
    request_timeout_seconds: float


class DotdigitalApi:
    """Requests to one Dotdigital account, at most `connections` at once."""

    def __init__(self, account: Account, *, connections: int) -> None:
        self.account = account
        self._connections = connections
        self._client: httpx.AsyncClient | None = None
        self._refusal: str | None = None  # set by a 401/403: no further request is made

    def open(self) -> None:
        if self._client is not None:
            return
        account = self.account
        password = secret_value(account.password_env)
        if password is None:
            raise DestinationError(
                f"dotdigital.password_env: environment variable {account.password_env} is not set"
            )
        self._client = httpx.AsyncClient(
            base_url=account.base_url,
            auth=httpx.BasicAuth(account.api_user, password),
            timeout=request_timeout(account.request_timeout_seconds),
            limits=httpx.Limits(
                max_connections=self._connections,
                max_keepalive_connections=self._connections,
            ),
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def refuse(self, message: str) -> None:
        """Settings to fix: no further request is worth making (`message` says which)."""
        self._refusal = message

    def raise_if_refused(self) -> None:
        if self._refusal is not None:
            raise DestinationError(self._refusal)

    async def call(
        self,
        retrier: Retrier,
        what: str,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        documented: Collection[int],
        check: Check,
    ) -> httpx.Response:
        """One request under the retry policy; what comes back is neither transient nor a
        refusal of the credentials, and is for the caller to judge. A 2xx is one of the
        `documented` statuses and passed `check`; any other answer carries Dotdigital's JSON."""
        client = self._require_client()
        request = client.build_request(
            method,
            path,
            content=content,
            params=params,
            headers=_JSON_HEADERS if content is not None else None,
        )
        return await retrier.call(
            what, lambda: self._attempt(client, request, f"Dotdigital {what}", documented, check)
        )

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        what: str,
        documented: Collection[int],
        check: Check,
    ) -> httpx.Response:
        self.raise_if_refused()
        response = await send(client, request, what)
        status = response.status_code
        if 400 <= status < 500 and USAGE_EXCEEDED in response.text:
            raise TransientError(
                f"{what}: the API user's hourly call limit is used up ({USAGE_EXCEEDED})",
                retry_after=retry_after_seconds(response.headers),
            )
        if status in (401, 403):
            self._refusal = self._refusal_message(response)
            self.raise_if_refused()
        if 200 <= status < 300:
            expect_status(response, what, documented)
            check(response, what)
        elif not isinstance(read_json(response, what), dict):
            raise not_the_platform(response, what, "not Dotdigital's error document")
        return response

    def _refusal_message(self, response: httpx.Response) -> str:
        account = self.account
        if response.status_code == 401:
            return (
                f"Dotdigital did not accept the API user {account.api_user!r} with the password in"
                f" the environment variable {account.password_env} (HTTP 401): check"
                " dotdigital.api_user and that variable (dotdigital.password_env)"
            )
        check = f"dotdigital.region (now {account.region!r})"
        if self._custom_base_url():
            check = f"dotdigital.base_url (now {account.base_url}) and {check}"
        return (
            f"Dotdigital refused access ({platform_error(response)}): the account probably"
            f" lives in another region, or the API user may not use this API; check {check}"
        )

    def _custom_base_url(self) -> bool:
        return self.account.base_url != f"https://{self.account.region}-api.dotdigital.com"

    def _require_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise DestinationError("the Dotdigital destination is not open")
        return self._client
