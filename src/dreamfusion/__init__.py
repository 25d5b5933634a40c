"""dreamfusion: text to 3D by Score Distillation Sampling, in plain PyTorch."""
__version__ = "0.1.0"
