"""The local web app: `dreamfusion serve` (extra: pip install "dreamfusion[web]")."""
