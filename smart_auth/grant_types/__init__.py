"""One class per OAuth grant type at the token endpoint (after authlib's layout)."""

from .authorization_code import AuthorizationCodeGrant
from .base import GrantContext, TokenRequest
from .client_credentials import ClientCredentialsGrant
from .refresh_token import RefreshTokenGrant

__all__ = [
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "GrantContext",
    "RefreshTokenGrant",
    "TokenRequest",
]
