"""Checking a POST /api/runs body before anything is created: one sentence per problem."""
from __future__ import annotations

import json
import math
from typing import Any

from ..config import PRESETS
from ..errors import UserError
from .manager import RunRequest

MAX_BODY_BYTES = 10 * 1024
MAX_CAPTION_CHARS = 200
MAX_STEPS = 100_000
FIELDS = ("caption", "steps", "seed", "preset", "guidance")


class BodyTooLarge(UserError):
    """A request body over MAX_BODY_BYTES (HTTP 413)."""


def parse_request(body: bytes, backend_args: tuple[str, ...] = ()) -> RunRequest:
    """A RunRequest from a JSON body, checked like the command line checks it (the
    caption against the prior's vocabulary, every value's type and range)."""
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the request body is over {MAX_BODY_BYTES // 1024} kB")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UserError("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise UserError("the request body must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}")
    request = RunRequest(caption=check_caption_text(data.get("caption")),
                         steps=whole(data, "steps", 1, MAX_STEPS),
                         seed=whole(data, "seed", 0, 2**31 - 1),
                         preset=choice(data, "preset", PRESETS),
                         guidance=positive(data, "guidance"))
    check_with_the_prior(request, backend_args)
    return request


def check_caption_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError('caption must be non-empty text, e.g. "a red cube"')
    if len(value) > MAX_CAPTION_CHARS:
        raise UserError(f"the caption is over {MAX_CAPTION_CHARS} characters")
    return value.strip()


def whole(data: dict, key: str, lo: int, hi: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{key} must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def choice(data: dict, key: str, choices: tuple[str, ...]) -> str | None:
    value = data.get(key)
    if value is not None and value not in choices:
        raise UserError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def positive(data: dict, key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0 or value > 1000:
        raise UserError(f"{key} must be a number above 0 and at most 1000, got {value!r}")
    return float(value)


def check_with_the_prior(request: RunRequest, backend_args: tuple[str, ...]) -> None:
    """The config the run would get, resolved and its caption checked, as generate does."""
    from ..api import make_config
    from ..lifecycle import check_caption
    backend = dict(zip(backend_args[::2], backend_args[1::2]))
    cfg = make_config(request.caption, steps=request.steps, seed=request.seed,
                      preset=request.preset, guidance=request.guidance,
                      backend=backend.get("--backend"), model=backend.get("--model"))
    check_caption(cfg)
