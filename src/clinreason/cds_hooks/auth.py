"""The CDS Hooks way of trusting a CDS Client: a JWT the EHR signs with its private key.

Checked: an asymmetric algorithm from the allowed list (never `none` or HMAC), a `kid`, an issuer
on the allowlist, its key from the configured JWK Set (inline, its URL, or an allowlisted `jku`),
the signature, `aud` = the URL of the endpoint called, `exp`, `iat`, a bounded lifetime, and a `jti`
not seen before (remembered until the token expires). clinreason's API keys play no part here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from clinreason.config import CdsHooksIssuer, Settings

LEEWAY = 30  # seconds of clock skew between the EHR and this service
_SYMMETRIC = ("HS", "none")


class Unauthorized(Exception):
    """Why a request's JWT was refused (the 401's detail)."""


@dataclass(frozen=True)
class Client:
    """The authenticated EHR."""

    issuer: str
    config: CdsHooksIssuer
    jti: str
    tenant: str | None = None


class SeenTokens:
    """jti of accepted tokens, each kept until its token expires (per process)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, exp: float) -> bool:
        now = time.time()
        with self._lock:
            if len(self._seen) > 1000:
                self._seen = {k: t for k, t in self._seen.items() if t + LEEWAY > now}
            key = (issuer, jti)
            if key in self._seen and self._seen[key] + LEEWAY > now:
                return False
            self._seen[key] = exp
            return True


class Verifier:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.seen = SeenTokens()
        self._clients: dict[str, PyJWKClient] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, audiences: list[str]) -> Client:
        if not self.settings.cds_hooks_issuers:
            raise Unauthorized("no CDS Hooks client is configured (CLINREASON_CDS_HOOKS_ISSUERS)")
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("send Authorization: Bearer <JWT signed by the EHR>")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"not a JWT: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.startswith(_SYMMETRIC) or alg not in self.settings.cds_hooks_algorithms:
            raise Unauthorized(f"alg {alg!r} is not accepted (accepted: {', '.join(self.settings.cds_hooks_algorithms)})")
        if header.get("typ") not in (None, "JWT"):
            raise Unauthorized(f"typ {header.get('typ')!r}: expected JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the JWT header has no kid")
        issuer = unverified.get("iss")
        config = self.settings.cds_hooks_issuers.get(issuer) if isinstance(issuer, str) else None
        if config is None:
            raise Unauthorized(f"issuer {str(issuer)[:200]!r} is not a configured CDS Hooks client")
        key = self._key(config, kid, header.get("jku"))
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=audiences, issuer=issuer, leeway=LEEWAY,
                                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"JWT refused: {exc}") from None
        if not isinstance(claims["iat"], int | float) or claims["exp"] - claims["iat"] > self.settings.cds_hooks_max_token_lifetime:
            raise Unauthorized(f"the JWT lives longer than {self.settings.cds_hooks_max_token_lifetime} s (exp - iat)")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise Unauthorized("jti must be a non-empty string")
        if not self.seen.first_use(issuer, jti, float(claims["exp"])):
            raise Unauthorized("this JWT was already used (jti replayed)")
        tenant = claims.get("tenant")
        return Client(issuer, config, jti, tenant if isinstance(tenant, str) else None)

    def _key(self, config: CdsHooksIssuer, kid: str, jku: Any) -> Any:
        if jku is not None:
            allowed = {*config.jku, *([config.jwks_url] if config.jwks_url else [])}
            if jku not in allowed:
                raise Unauthorized(f"jku {str(jku)[:200]!r} is not on this issuer's allowlist")
            return self._from_url(jku, kid)
        if config.jwks is not None:
            try:
                keys = PyJWKSet.from_dict(config.jwks)
                return next(k for k in keys.keys if k.key_id == kid).key
            except StopIteration:
                raise Unauthorized(f"no key {kid!r} in the issuer's JWK Set") from None
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"the configured JWK Set is unusable: {exc}") from None
        if config.jwks_url is not None:
            return self._from_url(config.jwks_url, kid)
        raise Unauthorized("the issuer has no JWK Set configured (jwks or jwks_url)")

    def _from_url(self, url: str, kid: str) -> Any:
        with self._lock:
            client = self._clients.get(url)
            if client is None:  # caches the set; an unknown kid refetches it (key rotation)
                client = self._clients[url] = PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
        try:
            found: PyJWK = client.get_signing_key(kid)
        except jwt.PyJWKClientError as exc:
            raise Unauthorized(f"key {kid!r} not found at {url}: {exc}") from None
        return found.key
