"""The ``kmsnap log`` cache is keyed to every module of the package, and written atomically."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmsnap.errors import KmsnapError
from kmsnap.history import cache as historycache
from kmsnap.history.cache import ChangeCache, cache_key, change_from_cache, package_fingerprint
from kmsnap.snapshot.atomic import write_file_atomic


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the installed kmsnap package tree, free to edit."""
    copy = tmp_path / "kmsnap"
    shutil.copytree(historycache.PACKAGE_DIR, copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def _modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_the_fingerprint_is_of_the_installed_package_and_stable(package: Path) -> None:
    assert package_fingerprint(package) == package_fingerprint(historycache.PACKAGE_DIR)
    key = cache_key("a" * 40, "b" * 40, with_stats=False, ignore_fields=None)
    assert key == cache_key("a" * 40, "b" * 40, with_stats=False, ignore_fields=None)
    assert key["engine"] == historycache.engine_fingerprint()


def test_a_change_to_any_module_changes_the_key(package: Path) -> None:
    original = package_fingerprint(package)
    modules = _modules(package)
    # All of them, subpackages too: the old hand-picked list had four.
    assert len(modules) > 30 and any(p.parent.name == "emulator" for p in modules)
    seen = {original}
    for path in modules:
        data = path.read_bytes()
        path.write_bytes(data + b"\n# changed\n")
        package_fingerprint.cache_clear()
        changed = package_fingerprint(package)
        assert changed not in seen, path
        seen.add(changed)
        path.write_bytes(data)
    package_fingerprint.cache_clear()
    assert package_fingerprint(package) == original


def test_a_new_moved_or_removed_module_changes_the_key(package: Path) -> None:
    original = package_fingerprint(package)
    (package / "emulator" / "extra.py").write_text("X = 1\n")
    package_fingerprint.cache_clear()
    added = package_fingerprint(package)
    assert added != original
    (package / "emulator" / "extra.py").rename(package / "extra.py")  # a move, same bytes
    package_fingerprint.cache_clear()
    moved = package_fingerprint(package)
    assert moved not in (original, added)
    (package / "extra.py").unlink()
    (package / "model.py").unlink()
    package_fingerprint.cache_clear()
    assert package_fingerprint(package) not in (original, added, moved)


def test_a_package_without_readable_source_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(KmsnapError, match="no kmsnap source files under"):
        package_fingerprint(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "gone.py").symlink_to(tmp_path / "missing.py")
    with pytest.raises(KmsnapError, match="cannot read kmsnap's own source"):
        package_fingerprint(broken)


def test_entries_are_written_whole_and_read_back(tmp_path: Path) -> None:
    cache = ChangeCache(tmp_path)
    key = cache_key("a" * 40, None, with_stats=True, ignore_fields={"event": {"description"}})
    change = change_from_cache({
        "kind": "event", "change": "removed", "id": "e1", "name": "Signed up",
        "account_id": None, "product_id": "p1", "severity": "breaking", "old_id": None,
        "fields": None,
    })
    cache.put(key, [change], [("old", "events.yaml", "bad")])
    assert cache.writes == 1
    got = cache.get(key)
    assert got is not None
    assert got["changes"] == [change] and got["errors"] == [("old", "events.yaml", "bad")]
    files = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].endswith(".json") and not files[0].startswith(".")


def test_write_file_atomic_replaces_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.txt"
    write_file_atomic(target, b"one\n")
    write_file_atomic(target, b"two\n", mode=0o644)
    assert target.read_bytes() == b"two\n"
    assert target.stat().st_mode & 0o777 == 0o644

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("kmsnap.snapshot.atomic.os.replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_file_atomic(target, b"three\n")
    assert target.read_bytes() == b"two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # no temporary file left
