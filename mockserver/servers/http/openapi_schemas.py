"""The schemas of `GET /api/openapi.json` (`openapi`): the JSON shapes of contract 6 (`views`,
`core.models`, `manual`, `retrying`, `core.faults`) and the bodies the calls take."""

from __future__ import annotations

from typing import Any

from mockserver.clock import MAX_ADVANCE_SECONDS
from mockserver.core.faults import (
    ACTION_TARGETS,
    MAX_BYTES,
    MAX_SECONDS,
    MAX_TIMES,
    OPERATIONS,
    PROTOCOLS,
)
from mockserver.events import EVENT_TYPES
from mockserver.servers.http.validation import (
    EMAIL_RE,
    MAX_CREDITS,
    MAX_EMAIL,
    MAX_PASSWORD,
    MAX_TEXT,
)

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NAT: Schema = {"type": "integer", "minimum": 0}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "description": "ISO-8601"}
NULL_STR: Schema = {"type": ["string", "null"]}
# What the server takes, as it checks it (a client generated from the document sends nothing it
# refuses): a query's text (`validation.text_param`), a login (`tree.valid_login`: no `..`),
# an e-mail address (`validation.EMAIL_RE`), a password, a one-line fault text.
TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "^[^\\x00]*$"}
LOGIN: Schema = {
    "type": "string",
    "maxLength": 64,
    "pattern": "^[A-Za-z0-9](?:[A-Za-z0-9_-]|\\.[A-Za-z0-9_-])*\\.?$",
}
EMAIL: Schema = {"type": "string", "maxLength": MAX_EMAIL, "pattern": f"^{EMAIL_RE.pattern}$"}
PASSWORD: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PASSWORD,
    "pattern": "^[^\\x00]*$",
}
LINE: Schema = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\n]*$"}
REASON: Schema = {
    "enum": ["Incorrect_FileName", "No_valid_TPOA", "Empty_File", "Not_enough_credits", None]
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_text(schema: Schema) -> Schema:
    """A string holding one JSON value of `schema` (an event's `data:` line)."""
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


def obj(props: dict[str, Schema], optional: tuple[str, ...] = (), closed: bool = True) -> Schema:
    """An object whose keys are all required but `optional`; `closed`: no other key."""
    out: Schema = {"type": "object", "properties": props}
    out["required"] = [k for k in props if k not in optional]
    if closed:
        out["additionalProperties"] = False
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


REJECTED = obj({"line": INT, "error": STR, "detail": STR, "value": STR})
HINT = obj(
    {
        "code": STR,
        "message": STR,
        "count": NAT,
        "lines": array(INT),
        "file_id": INT,
        "final_name": STR,
    },
    optional=("file_id", "final_name"),
)
COUNTS: Schema = {"type": "object", "additionalProperties": NAT}

RULE_FIELDS: dict[str, Schema] = {
    "login": LINE,
    "name": {**LINE, "description": "a glob"},
    "times": {"type": "integer", "minimum": 0, "maximum": MAX_TIMES, "default": 1},
    "probability": {"type": "number", "minimum": 0, "maximum": 1},
    "seed": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
}
SECONDS: Schema = {"type": "number", "minimum": 0, "maximum": MAX_SECONDS}
ACTION_FIELDS: dict[str, dict[str, Schema]] = {
    "error": {"code": {"type": "integer", "minimum": 400, "maximum": 599}, "message": LINE},
    "delay": {"seconds": SECONDS},
    "stall": {"seconds": SECONDS},
    "truncate": {"bytes": {"type": "integer", "minimum": 0, "maximum": MAX_BYTES}},
    "verdict": {"reason": {"enum": [r for r in REASON["enum"] if r is not None]}},
}
SHOWN: dict[str, Schema] = {"id": INT, "fired": NAT, "source": {"enum": ["config", "api"]}}


def fault_rule(action: str, shown: bool = False) -> Schema:
    """The rule of one action, as `POST /api/faults` takes it or (`shown`) as it is listed,
    with its `id`, `fired` count and `source`. An action's own field (`seconds`, `bytes`,
    `reason`) is required; `protocol` is for operations (a step's is `any`, and not listed)."""
    targets = ACTION_TARGETS[action]
    on_operations = all(target in OPERATIONS for target in targets)
    protocol: Schema = {"enum": list(PROTOCOLS)} if on_operations else {"const": "any"}
    props: dict[str, Schema] = {
        "on": {"enum": list(targets)},
        "action": {"const": action},
        "protocol": {**protocol, "default": "any"},
        **RULE_FIELDS,
        **ACTION_FIELDS.get(action, {}),
        **(SHOWN if shown else {}),
    }
    needed = {"on", "action", *ACTION_FIELDS.get(action, {})} - {"code", "message"}
    if shown:
        needed |= set(SHOWN)
    schema = obj(props, optional=tuple(k for k in props if k not in needed))
    schema["not"] = {"required": ["times", "probability"]}
    schema["dependentRequired"] = {"seed": ["probability"]}
    return schema


SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": STR}),
    "Account": obj(
        {
            "login": STR,
            "credits": NAT,
            "subscription": BOOL,
            "email": STR,
            "configured": {**BOOL, "description": "from the config: reset restores it"},
        }
    ),
    "Accounts": obj({"accounts": array(ref("Account"))}),
    "NewAccount": obj(
        {
            "login": LOGIN,
            "password": PASSWORD,
            "credits": {"type": "integer", "minimum": 0, "maximum": MAX_CREDITS, "default": 100},
            "subscription": {"type": "boolean", "default": False},
            "email": {**EMAIL, "description": "default: <login>@example.com"},
        },
        optional=("credits", "subscription", "email"),
    ),
    "AccountChange": {
        **obj(
            {
                "credits": {"type": "integer", "minimum": 0, "maximum": MAX_CREDITS},
                "subscription": BOOL,
                "password": PASSWORD,
                "email": EMAIL,
            },
            optional=("credits", "subscription", "password", "email"),
        ),
        "minProperties": 1,
    },
    "Rejected": REJECTED,
    "Hint": HINT,
    "File": obj(
        {
            "id": {"type": "integer", "minimum": 1},
            "login": STR,
            "original_name": STR,
            "final_name": STR,
            "folder": {"enum": ["ARCHIVES", "INVALIDS"]},
            "status": {"enum": ["archived", "invalid"]},
            "reason": REASON,
            "detail": STR,
            "campaign": NULL_STR,
            "send_at": NULL_STR,
            "mult": BOOL,
            "rows": NAT,
            "sms_count": NAT,
            "cost": NAT,
            "rejected": array(ref("Rejected")),
            "rejected_total": NAT,
            "rejected_counts": COUNTS,
            "received_at": TIME,
            "processed_at": TIME,
            "processing_ms": {"type": "number"},
            "mail": {"enum": ["sent", "skipped", "failed", "forward_failed", "pending"]},
            "done": BOOL,
            "hints": array(ref("Hint")),
            "duplicate_of": {
                "oneOf": [{"type": "null"}, obj({"id": INT, "final_name": STR})],
            },
        }
    ),
    "Files": obj({"files": array(ref("File")), "last_id": NAT}),
    "NoVerdict": obj({"error": STR, "last_id": NAT}, optional=("last_id",)),
    "Sms": obj(
        {
            "id": INT,
            "file_id": INT,
            "login": STR,
            "campaign": NULL_STR,
            "phone": STR,
            "message": STR,
            "sender_asked": NULL_STR,
            "sender_applied": STR,
            "scheduled_at": NULL_STR,
            "status": {"enum": ["scheduled", "sent"]},
            "line": INT,
            "septets": NAT,
            "warnings": array(STR),
            "file": STR,
            "final_name": STR,
            "price": NAT,
        }
    ),
    "Messages": obj({"messages": array(ref("Sms")), "count": NAT, "limit": NAT, "offset": NAT}),
    "Mail": obj(
        {
            "to": STR,
            "from": STR,
            "subject": STR,
            "date": STR,
            "message_id": STR,
            "login": STR,
            "file": STR,
            "body": STR,
        }
    ),
    "MailList": obj({"mail": array(ref("Mail"))}),
    "Reset": obj({"status": {"const": "reset"}, "accounts": array(ref("Account"))}),
    "CheckSms": obj(
        {
            "line": INT,
            "phone": STR,
            "message": STR,
            "sender_asked": NULL_STR,
            "sender_applied": STR,
            "septets": NAT,
            "warnings": array(STR),
            "price": NAT,
        }
    ),
    "Check": obj(
        {
            "bytes": NAT,
            "original_name": STR,
            "status": {"enum": ["archived", "invalid", "ignored"]},
            "reason": REASON,
            "final_name": NULL_STR,
            "detail": STR,
            "campaign": NULL_STR,
            "send_at": NULL_STR,
            "mult": BOOL,
            "rows": NAT,
            "sms_count": NAT,
            "cost": NAT,
            "sms": array(ref("CheckSms")),
            "rejected": array(ref("Rejected")),
            "rejected_total": NAT,
            "rejected_counts": COUNTS,
            "hints": array(ref("Hint")),
        }
    ),
    "Dropped": obj({"login": STR, "name": STR, "bytes": NAT}),
    "Clock": obj({"now": TIME, "frozen": BOOL}),
    "ClockChange": {
        "description": "exactly one of: now (no offset: Europe/Paris), advance_seconds, real",
        "oneOf": [
            obj({"now": {"type": "string", "format": "date-time", "maxLength": 64}}),
            obj(
                {
                    "advance_seconds": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": MAX_ADVANCE_SECONDS,
                    }
                }
            ),
            obj({"real": {"const": True}}),
        ],
    },
    "Waiting": obj({"login": STR, "name": STR, "claimed_at": TIME}),
    "Retrying": obj(
        {
            "login": STR,
            "name": STR,
            "step": {"enum": ["read", "judge", "record", "move", "mail"]},
            "attempts": NAT,
            "cause": STR,
            "next_at": TIME,
        }
    ),
    "Processing": obj(
        {
            "mode": {"enum": ["auto", "manual"]},
            "waiting": array(ref("Waiting")),
            "retrying": array(ref("Retrying")),
        }
    ),
    "Advance": obj(
        {"name": {"type": "string", "minLength": 1, "maxLength": 1000}, "login": LOGIN},
        optional=("name", "login"),
    ),
    "Advanced": obj({"advanced": array(ref("Waiting"))}),
    # One variant per action (`core.faults.parse_rule`): its targets, its own fields, and the
    # fields every rule may have; `times` or `probability`, `seed` only with `probability`.
    "FaultRule": {"oneOf": [fault_rule(action) for action in ACTION_TARGETS]},
    "Fault": {"oneOf": [fault_rule(action, shown=True) for action in ACTION_TARGETS]},
    "Faults": obj({"faults": array(ref("Fault"))}),
    # `GET /api/events` (contract 9.1, `events_api`): the stream's events. Its `schema` is one
    # event, as OpenAPI 3.2 says with `itemSchema` (3.1 has no word for a stream; tools read
    # `schema` as one event): `id` (none on a notice), `event` and `data`, one JSON object.
    "ServerSentEvent": {
        "oneOf": [
            obj(
                {
                    "id": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "event": {"enum": list(EVENT_TYPES)},
                    "data": json_text(ref("Event")),
                }
            ),
            obj(
                {
                    "id": {"type": "string", "description": "the last event's (SSE)"},
                    "event": {"enum": ["lost", "overflow"]},
                    "data": json_text(ref("StreamNotice")),
                },
                optional=("id",),
            ),
        ]
    },
    "Event": obj(
        {
            "id": {"type": "integer", "minimum": 1},
            "type": {"enum": list(EVENT_TYPES)},
            "time": TIME,
            "login": NULL_STR,
        },
        closed=False,  # and the fields of its type (docs/api.md)
    ),
    "StreamNotice": {
        "oneOf": [
            obj({"type": {"const": "lost"}, "after": NAT, "oldest": {"type": ["integer", "null"]}}),
            obj({"type": {"const": "overflow"}, "last_id": NAT}),
        ]
    },
    "Removed": obj({"removed": NAT}),
    "Health": {
        "oneOf": [
            obj(
                {
                    "status": {"const": "ok"},
                    "ftp_port": INT,
                    "sftp_port": INT,
                    "http_port": INT,
                }
            ),
            obj(
                {
                    "status": {"const": "degraded"},
                    "problems": {"type": "object", "additionalProperties": STR},
                    "ftp_port": INT,
                    "sftp_port": INT,
                    "http_port": INT,
                }
            ),
            obj({"status": {"const": "starting"}}),
        ]
    },
}
