"""OpenAPI schemas and operations of the Actor run endpoints (routing.ROUTES names them per method)."""

from __future__ import annotations

from typing import Any

from satchel.api.spec.common import (
    BOOLEAN,
    FLAG,
    INTEGER,
    LIMIT,
    STRING,
    TIME,
    Schema,
    nullable,
    obj,
    ok_json,
    query,
    ref,
    register,
    responses,
)
from satchel.service.access import GENERAL_ACCESS
from satchel.service.runs import MAX_STATUS_MESSAGE, ORIGINS, STATUSES
from satchel.service.validation import MEMORY_RANGE

STATUS: Schema = {"enum": list(STATUSES)}
ORIGIN: Schema = {"enum": list(ORIGINS)}
BUILD_NUMBER: Schema = {"const": "0.0.1"}
NUMBER: Schema = {"type": "number", "minimum": 0}

SHORT = {
    "id": {**STRING, "description": "The run's id"},
    "actId": {**STRING, "description": "The id of the run's Actor"},
    "userId": {**STRING, "description": "The id of the user who started it"},
    "actorTaskId": {"type": "null"},
    "status": STATUS,
    "startedAt": TIME,
    "finishedAt": nullable(TIME),
    "buildId": {**STRING, "description": "Satchel has no builds: the Actor's id"},
    "buildNumber": BUILD_NUMBER,
    "meta": obj({"origin": ORIGIN}),
    "usageTotalUsd": NUMBER,
    "defaultKeyValueStoreId": STRING,
    "defaultDatasetId": STRING,
    "defaultRequestQueueId": STRING,
}

register(
    {
        "Actor": obj(
            {
                "id": STRING,
                "userId": STRING,
                "name": STRING,
                "username": STRING,
                "isPublic": {"const": False, "description": "Always false: an Actor here is its owner's own"},
                "createdAt": TIME,
                "modifiedAt": TIME,
                "stats": {**obj({}), "description": "Empty: no statistics are kept of an Actor"},
                "versions": {"type": "array", "maxItems": 0, "description": "Empty: no source is kept here"},
                "defaultRunOptions": {
                    **obj({"build": {"const": "latest", "description": "The only build there is"}}),
                    "description": "What a run starts with, as far as Satchel has any",
                },
            }
        ),
        "Run": obj(
            {
                **SHORT,
                "statusMessage": nullable(STRING),
                "isStatusMessageTerminal": BOOLEAN,
                "exitCode": nullable({"type": "integer"}),
                "generalAccess": {"enum": list(GENERAL_ACCESS)},
                "stats": {
                    "type": "object",
                    "properties": {
                        name: NUMBER
                        for name in (
                            "inputBodyLen",
                            "restartCount",
                            "resurrectCount",
                            "computeUnits",
                            "durationMillis",
                            "runTimeSecs",
                        )
                    },
                    "required": ["inputBodyLen", "restartCount", "resurrectCount", "computeUnits"],
                    "additionalProperties": False,
                },
                "options": obj(
                    {
                        "build": STRING,
                        "timeoutSecs": {**INTEGER, "description": "As asked; Satchel times nothing out"},
                        "memoryMbytes": {
                            "type": "integer",
                            "minimum": MEMORY_RANGE[0],
                            "maximum": MEMORY_RANGE[1],
                        },
                        "diskMbytes": INTEGER,
                    }
                ),
                "pricingInfo": {"type": "null", "description": "Runs here are free"},
                "chargedEventCounts": {"type": "object", "additionalProperties": INTEGER},
            }
        ),
        "RunList": obj(
            {
                "total": INTEGER,
                "offset": INTEGER,
                "limit": {"type": "integer", "minimum": 1},
                "desc": BOOLEAN,
                "count": INTEGER,
                "items": {"type": "array", "items": obj(SHORT)},
            }
        ),
        "RunChanges": {
            "type": "object",
            "properties": {
                "statusMessage": nullable({"type": "string", "maxLength": MAX_STATUS_MESSAGE}),
                "isStatusMessageTerminal": nullable(BOOLEAN),
                "generalAccess": nullable({"enum": list(GENERAL_ACCESS)}),
                "status": nullable(STATUS),
                "exitCode": nullable({"type": "integer", "minimum": -(2**31), "maximum": 2**31}),
                "finishedAt": nullable(TIME),
            },
            "description": (
                "What to change; the run's storages get its generalAccess too. A finished status sets "
                "finishedAt to now unless it is given; a finishedAt before the run's startedAt is taken as "
                "its startedAt; other fields (a `runId`) are ignored."
            ),
        },
        "Charge": {
            "type": "object",
            "properties": {
                "eventName": {"type": "string", "minLength": 1, "maxLength": 256},
                "count": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 2**31,
                    "description": "How many events to charge (1 when left out)",
                },
            },
            "required": ["eventName"],
        },
    }
)

STATUS_FILTER = query("status", STRING, "Only runs of this status (or these, comma-separated)")
ORIGIN_FILTER = query("origin", ORIGIN, "Only runs started this way")
LAST_RUN_FILTERS = [STATUS_FILTER, ORIGIN_FILTER]
LIST_PARAMETERS = [
    query("offset", LIMIT, "How many runs to skip"),
    query("limit", LIMIT, "At most this many (clamped to 1000; 0 means 1000)"),
    query("desc", FLAG, "Latest started first"),
    STATUS_FILTER,
    ORIGIN_FILTER,
    query("startedAfter", TIME, "Only runs started at or after this time"),
    query("startedBefore", TIME, "Only runs started at or before this time"),
]
RUN = ok_json(200, ref("Run"), "The run")

# /v2/actor-runs and /v2/acts/{actorId}/runs
LIST_RUNS = {
    "operationId": "listRuns",
    "summary": "The caller's runs, in order of their start",
    "parameters": LIST_PARAMETERS,
    "responses": responses(ok_json(200, ref("RunList"), "A page of runs")),
}
LIST_ACTOR_RUNS = {
    "operationId": "listActorRuns",
    "summary": "The caller's runs of one of their Actors, in order of their start",
    "parameters": LIST_PARAMETERS,
    "responses": responses(ok_json(200, ref("RunList"), "A page of runs")),
}
START_RUN: dict[str, Any] = {
    "operationId": "startRun",
    "summary": (
        "Record a new RUNNING run of the Actor (made on first use when named `username~name` or `~name`), "
        "with new unnamed default storages; the body, if any, is its INPUT. Satchel starts nothing: "
        "`satchel run` does"
    ),
    "parameters": [
        query("origin", ORIGIN, "How the run was started (default API; `satchel run` says CLI)"),
        query("memory", {"type": "integer", "minimum": MEMORY_RANGE[0], "maximum": MEMORY_RANGE[1]}, "Shown"),
        query("timeout", INTEGER, "Shown as options.timeoutSecs; nothing is timed out"),
    ],
    "requestBody": {
        "required": False,
        "description": "The INPUT record, stored with its Content-Type (default application/json)",
        "content": {"*/*": {"schema": {}}},
    },
    "responses": responses({**ok_json(201, ref("Run"), "Started; Location names it")}, 413, 415, 507),
}
WAIT_FOR_FINISH = query("waitForFinish", INTEGER, "Wait up to this many seconds (60 at most) for it to end")
RUN_CHANGES = {"required": False, "content": {"application/json": {"schema": ref("RunChanges")}}}
RUN_CHANGED = responses(ok_json(200, ref("Run"), "The run as changed"), 413, 415, 507)
LAST_RUN = {
    "operationId": "getLastRun",
    "summary": "The Actor's run that started last",
    "parameters": [*LAST_RUN_FILTERS, WAIT_FOR_FINISH],
    "responses": responses(RUN),
}
UPDATE_LAST_RUN = {
    "operationId": "updateLastRun",
    "summary": "Change the Actor's run that started last, as a run's PUT does",
    "parameters": LAST_RUN_FILTERS,
    "requestBody": RUN_CHANGES,
    "responses": RUN_CHANGED,
}

# /v2/actor-runs/{runId}
GET_ACTOR = {
    "operationId": "getActor",
    "summary": (
        "One of the caller's Actors (made by its first run): its id, name and owner; Satchel keeps no "
        "source, builds or versions"
    ),
    "responses": responses(ok_json(200, ref("Actor"), "The Actor")),
}
GET_RUN = {
    "operationId": "getRun",
    "summary": "A run",
    "parameters": [WAIT_FOR_FINISH],
    "responses": responses(RUN),
}
UPDATE_RUN = {
    "operationId": "updateRun",
    "summary": "Change a run's status message, general access, or (whoever runs it) status and exit code",
    "requestBody": RUN_CHANGES,
    "responses": RUN_CHANGED,
}
GRACEFULLY = query(
    "gracefully",
    FLAG,
    "For a run `satchel run` drives (origin CLI): ABORTING, and its command is told `aborting` and given 30 s"
    " to end before it is stopped; any other run is ABORTED at once",
)
ABORTED = responses(ok_json(200, ref("Run"), "The run"), 507)
ABORT_RUN = {
    "operationId": "abortRun",
    "summary": "Mark a run ABORTED, or gracefully ABORTING (a finished one is left as it is); `satchel run`"
    " stops its command",
    "parameters": [GRACEFULLY],
    "responses": ABORTED,
}
DELETE_RUN = {
    "operationId": "deleteRun",
    "summary": "Delete a finished run (its owner only); its default storages stay",
    "responses": responses({"204": {"description": "Deleted"}}),
}
IDEMPOTENCY_KEY = {
    "name": "idempotency-key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 256},
    "description": "A request with a key the run has seen already is a no-op",
}
CHARGE = {"required": True, "content": {"application/json": {"schema": ref("Charge")}}}
CHARGED = responses({"201": {"description": "Counted"}}, 413, 415, 507)
CHARGE_RUN = {
    "operationId": "chargeRun",
    "summary": "Count a pay-per-event event; a repeated idempotency-key header counts nothing",
    "parameters": [IDEMPOTENCY_KEY],
    "requestBody": CHARGE,
    "responses": CHARGED,
}

# /v2/acts/{actorId}/runs/last/abort and /charge
ABORT_LAST_RUN = {
    "operationId": "abortLastRun",
    "summary": "Mark the Actor's run that started last ABORTED, as a run's abort does",
    "parameters": [*LAST_RUN_FILTERS, GRACEFULLY],
    "responses": ABORTED,
}
CHARGE_LAST_RUN = {
    "operationId": "chargeLastRun",
    "summary": "Count a pay-per-event event for the Actor's run that started last, as a run's charge does",
    "parameters": [*LAST_RUN_FILTERS, IDEMPOTENCY_KEY],
    "requestBody": CHARGE,
    "responses": CHARGED,
}

# /v2/actor-runs/{runId}/log, /v2/logs/{runId} and /v2/acts/{actorId}/runs/last/log
LOG_PARAMETERS = [
    query("stream", FLAG, "For a run `satchel run` drives: keep the answer open until the run has finished"),
    query("download", FLAG, "Send it as a file to save (Content-Disposition: attachment)"),
    query("raw", FLAG, "Keep the terminal escapes (colors) the command printed, left out otherwise"),
]
LOG = responses(
    {"200": {"description": "The log", "content": {"text/plain": {"schema": {"type": "string"}}}}}
)
GET_LOG = {
    "operationId": "getRunLog",
    "summary": "The run's log: what its command printed, as `satchel run` sent it (empty for other runs)",
    "parameters": LOG_PARAMETERS,
    "responses": LOG,
}
GET_LOG_BY_ID = {
    **GET_LOG,
    "operationId": "getLog",
    "summary": "The log of the run of this id, as the run's log",
}
LAST_RUN_LOG = {
    "operationId": "getLastRunLog",
    "summary": "The log of the Actor's run that started last, as a run's log",
    "parameters": [*LAST_RUN_FILTERS, *LOG_PARAMETERS],
    "responses": LOG,
}
APPEND_LOG = {
    "operationId": "appendRunLog",
    "summary": "Satchel's own: add text to the end of the run's log (its owner; `satchel run` sends its"
    " command's output here), up to 10 MiB a log",
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"schema": {"type": "string", "maxLength": 1048576}}},
    },
    "responses": responses({"204": {"description": "Added"}}, 413, 415, 507),
}
