"""The on-disk cache of photo banks: hits, invalidation by every input, damaged entries,
the bypass switches, pruning."""
import torch

from dreamfusion import cache
from dreamfusion.guidance import toy
from dreamfusion.guidance.toy import ToyPrior


class Builder:
    def __init__(self, value=1.0):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return torch.full((4, 3), self.value) + torch.arange(12.0).reshape(4, 3)


def test_second_read_is_a_hit_with_the_same_tensor(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    build = Builder()
    first = cache.cached_tensor("things", {"a": 1}, build)
    second = cache.cached_tensor("things", {"a": 1}, build)
    assert build.calls == 1 and torch.equal(first, second)


def test_every_key_change_is_a_new_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    build = Builder()
    for key in ({"a": 1}, {"a": 2}, {"a": 1, "b": "x"}):
        cache.cached_tensor("things", key, build)
    assert build.calls == 3 and len(list((tmp_path / "things").glob("*.pt"))) == 3


def test_damaged_entries_are_rebuilt_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    key = {"a": 1}
    good = cache.cached_tensor("things", key, Builder())
    path = cache.entry_path("things", key)
    damages = {
        "truncated": lambda b: b[: len(b) // 2],
        "garbage": lambda b: b"not a torch file",
        "empty": lambda b: b"",
    }
    for name, damage in damages.items():
        path.write_bytes(damage(path.read_bytes()))
        build = Builder()
        again = cache.cached_tensor("things", key, build)
        assert build.calls == 1, name
        assert torch.equal(again, good)
        assert cache.read_entry(path, key) is not None  # replaced by a whole entry


def test_an_entry_whose_values_or_key_do_not_match_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    key = {"a": 1}
    cache.cached_tensor("things", key, Builder())
    path = cache.entry_path("things", key)
    entry = torch.load(path, weights_only=True)
    entry["tensor"][0, 0] += 1.0  # values changed, checksum not
    torch.save(entry, path)
    assert cache.read_entry(path, key) is None
    # a valid entry written for another key, found under this key's name
    torch.save({"key": {"a": 2}, "checksum": cache.tensor_checksum(entry["tensor"]),
                "tensor": entry["tensor"]}, path)
    build = Builder(5.0)
    assert torch.equal(cache.cached_tensor("things", key, build), Builder(5.0)())
    assert build.calls == 1


def test_bypass_by_env_or_switch_reads_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    build = Builder()
    cache.cached_tensor("things", {"a": 1}, build, enabled=False)
    monkeypatch.setenv("DREAMFUSION_NO_CACHE", "1")
    cache.cached_tensor("things", {"a": 1}, build)
    cache.cached_tensor("things", {"a": 1}, build)
    assert build.calls == 3 and not (tmp_path / "things").exists()


def test_prune_removes_least_recently_used_first(tmp_path):
    import os
    for i in range(4):
        p = tmp_path / f"{i}.pt"
        p.write_bytes(b"x" * 100)
        os.utime(p, (1000 + i, 1000 + i))
    os.utime(tmp_path / "0.pt", (2000, 2000))  # used last
    cache.prune(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["0.pt", "3.pt"]


def test_toy_prior_banks_from_the_cache_equal_fresh_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    fresh = ToyPrior(8, 6, 10, cache=False)
    cold, warm = ToyPrior(8, 6, 10), ToyPrior(8, 6, 10)
    for text in ("a red cube", "a red cube, back view", ""):
        assert torch.equal(fresh.bank(text), cold.bank(text))
        assert torch.equal(fresh.bank(text), warm.bank(text))
    assert len(list((tmp_path / "photo-banks").glob("*.pt"))) == 3
    ToyPrior(8, 7, 10).bank("a red cube")  # another bank size: another entry
    ToyPrior(8, 6, 10, seed=1).bank("a red cube")  # another seed: another entry
    assert len(list((tmp_path / "photo-banks").glob("*.pt"))) == 5


def test_changed_photo_code_makes_cached_banks_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path))
    ToyPrior(8, 6, 10).bank("a red cube")
    calls = []
    real = ToyPrior._render_photos

    def counting(self, key):
        calls.append(key)
        return real(self, key)
    monkeypatch.setattr(ToyPrior, "_render_photos", counting)
    ToyPrior(8, 6, 10).bank("a red cube")
    assert calls == []  # same code: a hit
    monkeypatch.setattr(toy, "photo_code", lambda: "another renderer")
    ToyPrior(8, 6, 10).bank("a red cube")
    assert calls == ["a red cube"]


def test_no_cache_option_turns_both_caches_off():
    from dreamfusion.cli import build_parser, config_from_args
    args = build_parser().parse_args(["generate", "a red cube", "--no-cache"])
    cfg = config_from_args(args)
    assert not cfg.guidance.bank_cache and not cfg.guidance.text_cache
    default = config_from_args(build_parser().parse_args(["generate", "a red cube"]))
    assert default.guidance.bank_cache and default.guidance.text_cache
