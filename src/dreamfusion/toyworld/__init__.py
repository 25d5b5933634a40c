"""The toy world: captioned objects with exact ground truth (docs/TOYWORLD.md)."""
from .captions import (
    Caption,
    CaptionError,
    ToyObject,
    all_objects,
    parse_caption,
    single_color_objects,
)
from .geometry import (
    BOUNDING_RADIUS,
    color_tensor,
    inside,
    normals,
    occupancy_grid,
    sdf,
    surface_albedo,
    volume,
)
from .photos import (
    random_captions,
    render_mixed_photos,
    render_photos,
    sample_light_dirs,
    sample_photo_cameras,
)
from .render import render_objects, trace
from .world import (
    AMBIENT,
    BACKGROUND,
    CLAY_PROBABILITY,
    COLORS,
    DIFFUSE,
    FOV,
    FRONT_BIAS_PROBABILITY,
    FRONT_BIAS_STD,
    FRONT_COS,
    LIGHT_JITTER,
    PHOTO_DIST_RANGE,
    PHOTO_EL_RANGE,
    SHAPES,
    VIEWS,
    grid_points,
)

__all__ = [
    "AMBIENT", "BACKGROUND", "BOUNDING_RADIUS", "CLAY_PROBABILITY", "COLORS", "Caption",
    "CaptionError", "DIFFUSE", "FOV", "FRONT_BIAS_PROBABILITY", "FRONT_BIAS_STD",
    "FRONT_COS", "LIGHT_JITTER", "PHOTO_DIST_RANGE", "PHOTO_EL_RANGE", "SHAPES",
    "ToyObject", "VIEWS", "all_objects", "color_tensor", "grid_points", "inside",
    "normals", "occupancy_grid", "parse_caption", "random_captions", "render_mixed_photos",
    "render_objects", "render_photos", "sample_light_dirs", "sample_photo_cameras", "sdf",
    "single_color_objects", "surface_albedo", "trace", "volume",
]
