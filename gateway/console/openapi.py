"""The console's JSON API as an OpenAPI 3.1 document, served at ``/api/openapi.json``.

Written by hand next to the handlers (``routes.py``); ``tests/test_console_units.py`` checks
that every route of the application is documented and every documented path is served.
Other local tools use the same API: sign in with ``POST /api/signin``, keep the cookie,
send the ``csrf`` value of the answer as ``X-CSRF-Token`` with every POST.
"""

from __future__ import annotations

from typing import Any

from gateway import __version__

_ERROR = {"$ref": "#/components/responses/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": _json(schema or {"type": "object"})}


def _path_param(name: str, description: str, enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _action(
    summary: str, target: str, target_doc: str, actions: list[str], body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"session": [], "csrf": []}],
            "parameters": [
                _path_param(target, target_doc),
                _path_param("action", "what to do", actions),
            ],
            "requestBody": {"required": False, "content": _json(body)},
            "responses": {
                "200": _ok("done", {"$ref": "#/components/schemas/Reply"}),
                "401": {
                    "description": "not signed in (reason 'signin'), or no interaction for"
                    " idle_timeout (reason 'reauth': POST /api/reauth, then try again);"
                    " nothing was done or audited",
                    "content": _json({"$ref": "#/components/schemas/Reply"}),
                },
                "403": {"description": "no CSRF token, or the role may not do this"},
                "409": _ok("the gateway refused it (the reply says why)"),
                "422": _ok("a required field is missing (a shelve's reason)"),
            },
        }
    }


def _get(summary: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": [{"session": []}],
            "responses": {"200": _ok(summary, schema), "401": _ERROR},
            **extra,
        }
    }


def document() -> dict[str, Any]:
    reason = {"type": "string", "maxLength": 500, "description": "for the audit trail"}
    seconds = {"type": "number", "exclusiveMinimum": 0, "description": "seconds"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CellSafe Gateway operator console",
            "version": __version__,
            "description": "Every action is a CommandRouter command on channel 'console',"
            " audited as an event that reaches the WMS. Roles: viewer (reads), operator (ack,"
            " reset, shelve, unshelve, abort, resume), engineer (also override, end-override,"
            " matrix reset, disable, enable).",
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "cellsafe_console"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
            "responses": {
                "Error": {
                    "description": "not signed in, or the session expired",
                    "content": _json({"$ref": "#/components/schemas/Reply"}),
                }
            },
            "schemas": {
                "Reply": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "error": {"type": "string"},
                        "reason": {
                            "enum": ["signin", "reauth", "password"],
                            "description": "with a 401: sign in; give the password again;"
                            " the password given was wrong",
                        },
                        "events": {"type": "array", "items": {"type": "string"}},
                        "state": {"type": "string", "description": "ISA-18.2 alarm state"},
                    },
                    "required": ["ok"],
                },
                "Me": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "role": {"enum": ["viewer", "operator", "engineer"]},
                        "lang": {"enum": ["en", "zh"]},
                        "csrf": {"type": "string", "description": "send as X-CSRF-Token"},
                        "allowed": {"type": "array", "items": {"type": "string"}},
                        "idle_timeout": seconds,
                        "act_for": {
                            "type": "number",
                            "minimum": 0,
                            "description": "seconds before an action needs the password again",
                        },
                    },
                },
            },
        },
        "paths": {
            "/api/openapi.json": {
                "get": {"summary": "this document", "responses": {"200": _ok("OpenAPI 3.1")}}
            },
            "/api/i18n": {
                "get": {
                    "summary": "the text catalogue in the chosen language",
                    "parameters": [
                        {"name": "lang", "in": "query", "schema": {"enum": ["en", "zh"]}}
                    ],
                    "responses": {"200": _ok("lang, languages, text")},
                }
            },
            "/api/signin": {
                "post": {
                    "summary": "sign in; sets the session cookie",
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                                "required": ["name", "password"],
                            }
                        ),
                    },
                    "responses": {
                        "200": _ok("signed in", {"$ref": "#/components/schemas/Me"}),
                        "400": _ERROR,
                        "401": _ERROR,
                        "403": _ERROR,
                        "429": _ERROR,
                    },
                }
            },
            "/api/alarm-count": {
                "get": {
                    "summary": "public: how many high or critical alarms are annunciated"
                    " (unack, acked, rtn_unack, latched); no ids, zones or values",
                    "responses": {
                        "200": _ok(
                            "the count",
                            {
                                "type": "object",
                                "properties": {"high": {"type": "integer", "minimum": 0}},
                            },
                        )
                    },
                }
            },
            "/api/reauth": {
                "post": {
                    "summary": "the signed-in account's password again: actions are allowed"
                    " for idle_timeout more; the session and its live page go on",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {"password": {"type": "string"}},
                                "required": ["password"],
                            }
                        ),
                    },
                    "responses": {
                        "200": _ok("confirmed", {"$ref": "#/components/schemas/Me"}),
                        "400": _ERROR,
                        "401": _ERROR,
                        "403": _ERROR,
                        "429": _ERROR,
                    },
                }
            },
            "/api/activity": {
                "post": {
                    "summary": "the user touched the page: keeps the acting window open"
                    " (never reopens a lapsed one)",
                    "security": [{"session": [], "csrf": []}],
                    "responses": {
                        "200": _ok(
                            "may_act and act_for (seconds)",
                            {
                                "type": "object",
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "may_act": {"type": "boolean"},
                                    "act_for": {"type": "number", "minimum": 0},
                                },
                            },
                        ),
                        "401": _ERROR,
                        "403": _ERROR,
                    },
                }
            },
            "/api/signout": {
                "post": {
                    "summary": "end the session",
                    "security": [{"session": [], "csrf": []}],
                    "responses": {"200": _ok("signed out"), "401": _ERROR},
                }
            },
            "/api/me": _get("the signed-in user", {"$ref": "#/components/schemas/Me"}),
            "/api/language": {
                "post": {
                    "summary": "this session's language",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": {
                        "content": _json(
                            {"type": "object", "properties": {"lang": {"enum": ["en", "zh"]}}}
                        )
                    },
                    "responses": {"200": _ok("set"), "400": _ERROR, "401": _ERROR},
                }
            },
            "/api/state": _get(
                "zones, alarms, relays, matrix rows and device health (gateway/console/view.py)"
            ),
            "/api/stream": {
                "get": {
                    "summary": "server-sent events: 'state' (as /api/state) and 'event'"
                    " (each new event record, docs/events.md)",
                    "security": [{"session": []}],
                    "responses": {
                        "200": {
                            "description": "an endless stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "401": _ERROR,
                        "503": _ERROR,
                    },
                }
            },
            "/api/events": _get(
                "recent events, newest first",
                parameters=[
                    {"name": "category", "in": "query", "schema": {"type": "string"}},
                    {"name": "type", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {"name": "before", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                ],
            ),
            "/api/trends": _get("points with recent samples"),
            "/api/trends/{point}": _get(
                "a point's recent samples: ts (Unix s) and values (null: bad)",
                parameters=[_path_param("point", "point id, device.key")],
            ),
            "/api/alarms/{alarm}/{action}": _action(
                "an operator command on one alarm (docs/alarms.md)",
                "alarm",
                "alarm id",
                ["ack", "reset", "shelve", "unshelve", "disable", "enable"],
                {
                    "type": "object",
                    "properties": {"reason": reason, "duration": seconds},
                    "description": "shelve: reason and duration required",
                },
            ),
            "/api/relays/{relay}/{action}": _action(
                "a manual override of a relay, or its end (docs/safety.md)",
                "relay",
                "relay name",
                ["override", "end-override"],
                {
                    "type": "object",
                    "properties": {
                        "state": {"enum": ["on", "off"]},
                        "reason": reason,
                        "duration": seconds,
                    },
                    "description": "override: state, reason and duration required",
                },
            ),
            "/api/matrix/{row}/{action}": _action(
                "abort or resume a pre-discharge countdown, reset a latched row",
                "row",
                "matrix row name",
                ["abort", "resume", "reset"],
                {"type": "object", "properties": {"reason": reason}},
            ),
        },
    }
