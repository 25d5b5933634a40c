"""Checking configs from outside the program: config files, config.json, --set values.

Every rejection is a ConfigError naming the dotted key (e.g. `guidance.t_max`), so the
user can find it. Types are checked against the dataclass annotations, ranges against
RANGES below; `validate` is called on every config a run is started or resumed with.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import RunConfig


class ConfigError(ValueError):
    """A config value or key that cannot be used; the message names the key."""


# -- types ---------------------------------------------------------------------------
def _type_error(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{key} must be {expected}, got {value!r}")


def check_scalar(key: str, value: Any, default: Any, hint: Any) -> Any:
    """`value` converted to the type of `default` (annotation `hint`), or ConfigError."""
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}, "
                              f"got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _type_error(key, value, "true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, value, "a whole number")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(key, value, "a number")
        if not math.isfinite(value):
            raise _type_error(key, value, "a finite number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise _type_error(key, value, "text")
        return value
    raise ConfigError(f"{key}: unsupported config type {type(default).__name__}")


def check_tuple(key: str, value: Any, default: tuple) -> tuple:
    if not isinstance(value, (list, tuple)) or not value:
        raise _type_error(key, value, "a non-empty list")
    elem = default[0] if default else 0.0
    if isinstance(default, tuple) and len(default) == 2 and key.endswith("_range") \
            and len(value) != 2:
        raise _type_error(key, value, "a list of two numbers [low, high]")
    return tuple(check_scalar(f"{key}[{i}]", v, elem, None) for i, v in enumerate(value))


def from_dict(cls: type, data: Any, prefix: str = "", base: Any = None) -> Any:
    """Build a frozen config from nested plain data, starting from `base` (default:
    cls()); keys left out keep the base's values. Unknown keys and wrong types are
    ConfigErrors that name the key."""
    base = cls() if base is None else base
    if not isinstance(data, dict):
        raise _type_error(prefix.rstrip(".") or "the config", data, "a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in known:
            raise ConfigError(f"unknown config key {key!r}"
                              f" (known here: {', '.join(sorted(known))})")
        current = getattr(base, name)
        if dataclasses.is_dataclass(current):
            changes[name] = from_dict(type(current), value, f"{key}.", current)
        elif isinstance(current, tuple):
            changes[name] = check_tuple(key, value, current)
        else:
            changes[name] = check_scalar(key, value, current, hints[name])
    return dataclasses.replace(base, **changes)


# -- ranges --------------------------------------------------------------------------
def _between(lo: float, hi: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: lo <= v <= hi), f"between {lo:g} and {hi:g}"


_AT_LEAST_0 = ((lambda v: v >= 0), "0 or more")
_AT_LEAST_1 = ((lambda v: v >= 1), "1 or more")
_POSITIVE = ((lambda v: v > 0), "more than 0")
_FRACTION = _between(0.0, 1.0)
_TIME = ((lambda v: 0 < v < 1), "between 0 and 1 (exclusive)")
_SIZE = _between(8, 1024)

RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": _AT_LEAST_1, "batch_size": _AT_LEAST_1, "size": _between(8, 512),
    "seed": _AT_LEAST_0, "preview_every": _AT_LEAST_0, "checkpoint_every": _AT_LEAST_0,
    "field.resolution": _between(4, 512), "field.bound": _POSITIVE,
    "field.blob_radius": _POSITIVE, "field.blob_exponent": _POSITIVE,
    "field.init_noise": _AT_LEAST_0, "field.empty_density": _AT_LEAST_0,
    "render.samples": _between(2, 1024),
    "render.formation_size": ((lambda v: v == 0 or 8 <= v <= 512), "0 (off) or between 8 and 512"),
    "shading.albedo_only_fraction": _FRACTION, "shading.shaded_probability": _FRACTION,
    "shading.textureless_probability": _FRACTION, "shading.ambient": _AT_LEAST_0,
    "shading.diffuse": _AT_LEAST_0, "shading.light_jitter": _AT_LEAST_0,
    "shading.albedo_brightness": _POSITIVE,
    "cameras.fov": ((lambda v: 0 < v < 180), "between 0 and 180 degrees (exclusive)"),
    "cameras.dist_ends": _FRACTION,
    "guidance.guidance_scale": _AT_LEAST_0, "guidance.t_min": _TIME,
    "guidance.t_min_start": _TIME, "guidance.t_max": _TIME, "guidance.t_max_final": _TIME,
    "guidance.grad_clip": _AT_LEAST_0, "guidance.plain_camera_fraction": _FRACTION,
    "guidance.plain_camera_start": _FRACTION,
    "guidance.bank_size": _AT_LEAST_1, "guidance.uncond_bank_size": _AT_LEAST_1,
    "guidance.prior_seed": _AT_LEAST_0, "guidance.noise_samples": _AT_LEAST_1,
    "reg.orientation": _AT_LEAST_0, "reg.opacity": _AT_LEAST_0, "reg.tv": _AT_LEAST_0,
    "optim.lr_density": _AT_LEAST_0, "optim.lr_albedo": _AT_LEAST_0,
    "optim.lr_background": _AT_LEAST_0, "optim.density_warmup": _FRACTION,
    "optim.lr_final": _POSITIVE,
    "export.mesh_resolution": _between(8, 1024), "export.threshold": _AT_LEAST_0,
    "export.turntable_frames": _between(1, 1000), "export.turntable_size": _SIZE,
    "export.view_size": _SIZE, "export.texture_size": _between(0, 8192),
    "faults.max_consecutive": _AT_LEAST_1,
    "faults.lr_factor": ((lambda v: 0 < v <= 1), "more than 0 and at most 1"),
    "faults.max_rollbacks": _AT_LEAST_0, "faults.check_every": _AT_LEAST_1,
    "mesh.subdivisions": _between(0, 6), "mesh.radius": _between(0.05, 1.0),
    "mesh.sigma": _POSITIVE, "mesh.gamma": _POSITIVE, "mesh.lr_offsets": _AT_LEAST_0,
    "mesh.lr_colours": _AT_LEAST_0, "mesh.laplacian": _AT_LEAST_0,
    "refine.steps": _AT_LEAST_1, "refine.size": _between(8, 512), "refine.batch_size": _AT_LEAST_1,
    "refine.mesh_resolution": _between(8, 256), "refine.smooth_iterations": _AT_LEAST_0,
    "refine.flat_start": _FRACTION,
    "refine.bank_size": _AT_LEAST_1, "refine.lr_vertices": _AT_LEAST_0,
    "refine.distance_ends": _FRACTION,
    "refine.lr_colours": _AT_LEAST_0, "refine.step_smoothing": _AT_LEAST_0,
    "refine.normal_consistency": _AT_LEAST_0,
    "refine.laplacian": _AT_LEAST_0, "refine.edge_length": _AT_LEAST_0,
    "refine.sigma": _POSITIVE, "refine.gamma": _POSITIVE,
    "clip.crops": _between(1, 64), "clip.crop_scale": _between(0.1, 1.0),
    "clip.background_noise": _FRACTION, "clip.white_background": _FRACTION, "clip.transmittance_start": _FRACTION,
    "clip.transmittance_target": _FRACTION, "clip.transmittance_anneal": _FRACTION,
    "clip.transmittance_weight": _AT_LEAST_0,
}


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _ordered(cfg: RunConfig, low: str, high: str) -> None:
    if _get(cfg, low) > _get(cfg, high):
        raise ConfigError(f"{low} ({_get(cfg, low)}) must not be larger than {high} "
                          f"({_get(cfg, high)})")


def validate(cfg: RunConfig) -> RunConfig:
    """cfg itself if every value is in range, else ConfigError naming the first bad key."""
    for key, (ok, meaning) in RANGES.items():
        value = _get(cfg, key)
        if not ok(value):
            raise ConfigError(f"{key} must be {meaning}, got {value!r}")
    for key in ("field.density_levels", "field.albedo_levels"):
        levels = _get(cfg, key)
        if not all(2 <= n <= cfg.field.resolution for n in levels):
            raise ConfigError(f"{key} must be grid sizes between 2 and field.resolution "
                              f"({cfg.field.resolution}), got {list(levels)}")
    if cfg.refine.enabled and cfg.method != "dreamfusion":
        raise ConfigError(f"the refine stage (refine.enabled) refines DreamFusion's field "
                          f"with score distillation; method {cfg.method} has none")
    lo, hi = cfg.cameras.el_range
    if not -90 <= lo <= hi <= 90:
        raise ConfigError(f"cameras.el_range must be [low, high] within [-90, 90] degrees, "
                          f"got {[lo, hi]}")
    lo, hi = cfg.cameras.dist_range
    if not 0 < lo <= hi:
        raise ConfigError(f"cameras.dist_range must be [low, high] with 0 < low <= high, "
                          f"got {[lo, hi]}")
    lo, hi = cfg.render.formation_steps
    if not 0 <= lo <= hi <= 1:
        raise ConfigError(f"render.formation_steps must be [start, end] fractions of the run "
                          f"with 0 <= start <= end <= 1, got {[lo, hi]}")
    _ordered(cfg, "guidance.t_min", "guidance.t_max_final")
    _ordered(cfg, "guidance.t_min_start", "guidance.t_max")
    if cfg.method != "dreamfusion" and cfg.guidance.backend != "toy":
        raise ConfigError(f"guidance.backend {cfg.guidance.backend} is a diffusion prior, used "
                          f"by method dreamfusion only; method {cfg.method} is guided by an "
                          "image-caption model (--guide-model, clip.model)")
    return cfg


# -- files ---------------------------------------------------------------------------
def read_config_file(path: Path) -> dict:
    """The mapping in a .json, .yaml or .yml file; ConfigError if unreadable."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        text = path.read_text()
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {path} must end in .json, .yaml or .yml")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"config file {path} cannot be read: {err}") from None
    except Exception as err:  # yaml.YAMLError and friends
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def apply_file(base: RunConfig, path: Path, data: dict | None = None) -> RunConfig:
    """base with the values of a config file (same nested keys as a run's config.json);
    `data` is the file's mapping when the caller has read it already."""
    data = read_config_file(path) if data is None else data
    try:
        return from_dict(RunConfig, data, base=base)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def apply_dotted(base: RunConfig, changes: dict[str, Any]) -> RunConfig:
    """base with dotted-key changes, each checked like a config-file value."""
    cfg = base
    for key, value in changes.items():
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        cfg = from_dict(RunConfig, nested, base=cfg)
    return cfg

