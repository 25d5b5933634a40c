"""Test-session set-up: the on-disk cache lives in a fresh folder, so tests neither read
a developer's cache nor leave entries in it."""
import os
import tempfile

os.environ["DREAMFUSION_CACHE"] = tempfile.mkdtemp(prefix="dreamfusion-test-cache-")
