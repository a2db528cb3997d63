"""GitHub OAuth (web flow with PKCE) and the profile, e-mail and org-membership lookups, through
Authlib's async OAuth2 client. Endpoints come from GITHUB_URL / GITHUB_API_URL (Enterprise, test fakes)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from ..config import Config

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class GitHubError(Exception):
    """GitHub refused the exchange or answered something unusable (message is safe to show)."""


@dataclass(frozen=True)
class GitHubProfile:
    id: int
    login: str
    name: str | None
    email: str | None
    avatar_url: str | None
    access_token: str


def scopes(config: Config) -> str:
    return "read:user user:email" + (" read:org" if config.allowed_org else "")


def redirect_uri(config: Config) -> str:
    return f"{config.public_url}/api/auth/callback"


def _client(config: Config, **kwargs) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=config.github_client_id,
        client_secret=config.github_client_secret,
        scope=scopes(config),
        redirect_uri=redirect_uri(config),
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
        timeout=TIMEOUT_SECONDS,
        **kwargs,
    )


def authorization_request(config: Config) -> tuple[str, str, str]:
    """Return (URL to send the browser to, state, PKCE code verifier)."""
    verifier = secrets.token_urlsafe(64)
    client = _client(config)
    url, state = client.create_authorization_url(f"{config.github_url}/login/oauth/authorize",
                                                 state=secrets.token_urlsafe(32), code_verifier=verifier)
    return url, state, verifier


async def complete(config: Config, code: str, verifier: str) -> GitHubProfile:
    """Exchange the code and read the profile (and the primary verified e-mail if the profile has none)."""
    async with _client(config) as client:
        try:
            token = await client.fetch_token(f"{config.github_url}/login/oauth/access_token", code=code,
                                             code_verifier=verifier)
        except AuthlibBaseError as exc:
            raise GitHubError(f"GitHub refused the sign-in code ({exc.error}).") from exc
        except Exception as exc:
            log.warning("GitHub token exchange failed: %s", exc)
            raise GitHubError("GitHub could not be reached to finish the sign-in.") from exc
        user = await _get_json(client, f"{config.github_api_url}/user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or not user.get("login"):
            raise GitHubError("GitHub returned an unexpected profile.")
        email = user.get("email")
        if not email:
            emails = await _get_json(client, f"{config.github_api_url}/user/emails", allow_missing=True)
            email = next((e["email"] for e in emails or [] if e.get("primary") and e.get("verified")), None)
        return GitHubProfile(id=user["id"], login=user["login"], name=user.get("name"), email=email,
                             avatar_url=user.get("avatar_url"), access_token=token["access_token"])


async def org_membership_state(config: Config, access_token: str, org: str) -> str | None:
    """'active', 'pending', or None when the user is not a member of `org`."""
    async with _client(config, token={"access_token": access_token, "token_type": "bearer"}) as client:
        membership = await _get_json(client, f"{config.github_api_url}/user/memberships/orgs/{org}",
                                     allow_missing=True)
    return membership.get("state") if isinstance(membership, dict) else None


async def _get_json(client: AsyncOAuth2Client, url: str, allow_missing: bool = False):
    try:
        response = await client.get(url, headers={"Accept": "application/vnd.github+json"})
    except Exception as exc:
        log.warning("GitHub request %s failed: %s", url, exc)
        raise GitHubError("GitHub could not be reached to finish the sign-in.") from exc
    if allow_missing and response.status_code in (403, 404):
        return None
    if response.status_code != 200:
        raise GitHubError(f"GitHub answered {response.status_code} while reading your profile.")
    return response.json()
