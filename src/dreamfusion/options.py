"""From what a user asks for to a checked RunConfig: the one resolution path shared by
the CLI, the Python API, the benchmarks and the experiments.

Order: the preset of the chosen prior (config.PRESET_TABLE), then a config file, then
the named options, then dotted `settings` (the CLI's --set); validated at the end.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PRESETS, RunConfig, override, preset
from .errors import UserError

SHADING_MODES = {
    # shading name: config changes (None = the preset's schedule)
    "full": None,  # the paper's schedule (preset values)
    "lambertian": {"shading.textureless_probability": 0.0},
    "albedo": {"shading.albedo_only_fraction": 1.0},
}


@dataclass(frozen=True)
class RunOptions:
    """What a user can ask for; None = the preset's value. The CLI's options by the same
    names, and the keyword arguments of `dreamfusion.generate`."""

    caption: str | None = None
    config: Path | None = None
    """A YAML or JSON file with the nested keys of a run's config.json (any subset)."""
    preset: str | None = None
    """fast (default) or quality, for the chosen backend."""
    backend: str | None = None
    steps: int | None = None
    seed: int | None = None
    size: int | None = None
    batch_size: int | None = None
    guidance: float | None = None
    """Classifier-free guidance scale."""
    device: str | None = None
    model: str | None = None
    method: str | None = None
    guide_model: str | None = None
    view_prompts: bool | None = None
    perp_neg: bool | None = None
    refine: bool | None = None
    """The refine stage after the field (refine.py)."""
    shading: str | None = None
    export: bool | None = None
    cache: bool | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Dotted config keys to values, e.g. {"guidance.t_max_final": 0.4}; a text value is
    parsed as the type of the field it replaces (the CLI's --set)."""


def resolve_config(opts: RunOptions) -> RunConfig:
    """The checked config for these options; UserError names what is wrong."""
    from .config_check import ConfigError, apply_dotted, apply_file, read_config_file, validate
    try:
        data = read_config_file(opts.config) if opts.config is not None else {}
        if opts.caption is None and "caption" not in data:
            raise UserError('no caption given; say what to make, e.g. "a red cube"')
        cfg = base_preset(opts, data)
        if opts.config is not None:
            cfg = apply_file(cfg, opts.config, data)
        if opts.caption is not None:
            cfg = override(cfg, caption=opts.caption)
        cfg = apply_dotted(cfg, named_changes(opts))
        cfg = apply_dotted(cfg, parse_settings(opts.settings, cfg))
        if not refine_asked(opts, data):
            cfg = one_stage_unless_refinable(cfg)
        return validate(override(cfg, caption=cfg.caption.strip()))
    except ConfigError as err:
        raise UserError(str(err)) from None


def refine_asked(opts: RunOptions, data: Mapping[str, Any]) -> bool:
    """Whether the options or the config file set refine.enabled themselves."""
    group = data.get("refine")
    return (opts.refine is not None or "refine.enabled" in opts.settings
            or (isinstance(group, dict) and "enabled" in group))


def one_stage_unless_refinable(cfg: RunConfig) -> RunConfig:
    """The refine stage refines DreamFusion's field; a baseline method (Dream Fields,
    CLIP-Mesh) runs without it unless it is asked for, which validation then refuses."""
    return cfg if cfg.method == "dreamfusion" else override(cfg, **{"refine.enabled": False})


def base_preset(opts: RunOptions, data: Mapping[str, Any]) -> RunConfig:
    """The preset of the backend named by the options or, failing that, the config file."""
    name = opts.preset or "fast"
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose {' or '.join(PRESETS)}")
    group = data.get("guidance")
    backend = opts.backend or (group.get("backend") if isinstance(group, dict) else None)
    try:
        return preset(name, backend if isinstance(backend, str) else "toy")
    except ValueError:  # an unknown backend: validation names it below
        return preset(name)


def named_changes(opts: RunOptions) -> dict[str, Any]:
    """The dotted config changes of the named options that were given."""
    direct = {"steps": opts.steps, "seed": opts.seed, "size": opts.size,
              "batch_size": opts.batch_size, "device": opts.device,
              "guidance.guidance_scale": opts.guidance, "guidance.backend": opts.backend,
              "guidance.model": opts.model, "method": opts.method,
              "clip.model": opts.guide_model, "guidance.view_prompts": opts.view_prompts,
              "guidance.perp_neg": opts.perp_neg, "export.enabled": opts.export,
              "refine.enabled": opts.refine}
    changes = {k: v for k, v in direct.items() if v is not None}
    if opts.shading is not None and opts.shading not in SHADING_MODES:
        raise UserError(f"unknown shading {opts.shading!r}; choose "
                        f"{', '.join(SHADING_MODES)}")
    changes.update(SHADING_MODES[opts.shading or "full"] or {})
    if opts.cache is False:
        changes.update({"guidance.bank_cache": False, "guidance.text_cache": False})
    return changes


def parse_settings(items: Mapping[str, Any], base: RunConfig) -> dict[str, Any]:
    """Dotted keys checked against the config; text values parsed as the field's type."""
    changes = {}
    for key, value in items.items():
        current: Any = base
        for part in key.split("."):
            if not dataclasses.is_dataclass(current) or part not in {
                    f.name for f in dataclasses.fields(current)}:
                raise UserError(f"unknown config key {key!r}")
            current = getattr(current, part)
        if dataclasses.is_dataclass(current):
            raise UserError(f"{key!r} is a group of settings; name one of its fields")
        both_text = isinstance(value, str) and isinstance(current, str)
        changes[key] = value if both_text or not isinstance(value, str) else \
            parse_value(key, value, current)
    return changes


def parse_set(items: list[str], base: RunConfig) -> dict[str, Any]:
    """--set KEY=VALUE pairs as a dict of dotted keys to parsed values."""
    pairs = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        pairs[key] = raw
    try:
        return parse_settings(pairs, base)
    except UserError as err:
        raise UserError(f"--set: {err}") from None


def parse_value(key: str, raw: str, current: Any) -> Any:
    """Text as the type of `current` (bool, int, float, str or a tuple of them)."""
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if isinstance(current, (int, float, str)):
            return type(current)(raw)
        if isinstance(current, tuple):
            return tuple(type(current[0])(v) for v in raw.split(","))
    except ValueError:
        pass
    raise UserError(f"{raw!r} is not a valid value for {key} "
                    f"(expected {type(current).__name__})")
