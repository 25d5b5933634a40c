"""dreamfusion: text to 3D by Score Distillation Sampling, in plain PyTorch.

The Python API (README, "Python API"): `generate`, `resume`, `make_config`, `RunResult`,
`UserError`; presets in `dreamfusion.config` (`preset`, `PRESET_TABLE`)."""
__version__ = "0.1.0"

from .api import RunResult, generate, make_config, resume  # noqa: E402
from .errors import UserError  # noqa: E402

__all__ = ["RunResult", "UserError", "generate", "make_config", "resume", "__version__"]
