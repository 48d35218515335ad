"""OpenAPI schemas and operations of the user endpoints."""

from __future__ import annotations

from satchel.api.spec.common import ANYONE, STRING, TIME, obj, ok_json, ref, register, responses
from satchel.service.access import GENERAL_ACCESS

register(
    {
        "Me": obj(
            {
                "id": {**STRING, "description": "The user's id"},
                "username": {**STRING, "description": "The user's username"},
                "profile": {"type": "object"},
                "createdAt": {**TIME, "description": "When the user was made"},
                "defaultGeneralAccess": {"enum": list(GENERAL_ACCESS[:3])},
            }
        ),
        "PublicUser": obj(
            {"username": {**STRING, "description": "The user's username"}, "profile": {"type": "object"}}
        ),
    }
)

GET_ME = {
    "operationId": "getMe",
    "summary": "The user the token belongs to",
    "responses": responses(ok_json(200, ref("Me"), "The user")),
}
GET_USER = {
    "operationId": "getUser",
    "summary": "A user's public face; no token needed",
    "security": ANYONE,
    "responses": responses(ok_json(200, ref("PublicUser"), "The user")),
}
