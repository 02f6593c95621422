"""The schemas of `GET /api/openapi.json` (`openapi`): the JSON shapes of contract 6 (`views`,
`core.models`, `manual`, `retrying`, `core.faults`) and the bodies the calls take."""

from __future__ import annotations

from typing import Any

from mockserver.servers.http.validation import MAX_CREDITS

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NAT: Schema = {"type": "integer", "minimum": 0}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "description": "ISO-8601"}
NULL_STR: Schema = {"type": ["string", "null"]}
REASON: Schema = {
    "enum": ["Incorrect_FileName", "No_valid_TPOA", "Empty_File", "Not_enough_credits", None]
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


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
            "login": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
            "password": {"type": "string", "minLength": 1},
            "credits": {"type": "integer", "minimum": 0, "maximum": MAX_CREDITS, "default": 100},
            "subscription": {"type": "boolean", "default": False},
            "email": {"type": "string", "description": "default: <login>@example.com"},
        },
        optional=("credits", "subscription", "email"),
    ),
    "AccountChange": {
        **obj(
            {
                "credits": {"type": "integer", "minimum": 0, "maximum": MAX_CREDITS},
                "subscription": BOOL,
                "password": {"type": "string", "minLength": 1},
                "email": STR,
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
    "NoVerdict": obj({"error": STR, "last_id": NAT}),
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
            obj({"now": TIME}),
            obj({"advance_seconds": {"type": "number", "exclusiveMinimum": 0}}),
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
        {"name": {"type": "string", "minLength": 1, "maxLength": 1000}, "login": STR},
        optional=("name", "login"),
    ),
    "Advanced": obj({"advanced": array(ref("Waiting"))}),
    "FaultRule": obj(
        {
            "on": {
                "enum": [
                    *("login", "list", "upload", "rename", "delete", "download"),
                    *("claim", "judge", "move", "mail"),
                ]
            },
            "action": {
                "enum": [
                    *("error", "disconnect", "delay", "truncate"),
                    *("stall", "crash", "verdict", "fail"),
                ]
            },
            "protocol": {"enum": ["ftp", "sftp", "any"], "default": "any"},
            "login": STR,
            "name": {**STR, "description": "a glob"},
            "code": INT,
            "message": STR,
            "seconds": {"type": "number", "minimum": 0},
            "bytes": NAT,
            "reason": REASON,
            "times": {"type": "integer", "minimum": 0, "default": 1},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "seed": INT,
        },
        optional=(
            *("protocol", "login", "name", "code", "message", "seconds", "bytes"),
            *("reason", "times", "probability", "seed"),
        ),
        closed=False,
    ),
    "Fault": {
        "allOf": [ref("FaultRule")],
        "type": "object",
        "required": ["id", "fired", "source"],
        "properties": {"id": INT, "fired": NAT, "source": {"enum": ["config", "api"]}},
    },
    "Faults": obj({"faults": array(ref("Fault"))}),
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
