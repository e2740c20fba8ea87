"""The per-core lock directory in the shared temp directory: ours, private, or refused.

Its name is predictable (``cluster-eval-cores-<uid>``), so another user can create it
first; a directory someone else owns or can write to must never hold our locks.
"""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from serving.cores import claim_core
from serving.errors import StackError


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """A private stand-in for /tmp (``tempfile.tempdir`` is the documented override)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path / f"cluster-eval-cores-{os.getuid()}"


def test_the_directory_is_created_private(temp_root):
    assert claim_core(0, [0]).exclusive
    mode = temp_root.lstat().st_mode
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700


def test_an_existing_private_directory_of_ours_is_used(temp_root):
    temp_root.mkdir(mode=0o700)
    assert claim_core(0, [0]).exclusive


def test_a_world_writable_directory_is_refused(temp_root):
    temp_root.mkdir()
    temp_root.chmod(0o777)
    with pytest.raises(StackError, match="writable by others") as caught:
        claim_core(0, [0])
    assert str(temp_root) in str(caught.value)


def test_a_symlink_in_its_place_is_refused(temp_root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    temp_root.symlink_to(elsewhere)
    with pytest.raises(StackError, match="not a directory"):
        claim_core(0, [0])
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory away needs root")
def test_a_directory_owned_by_another_user_is_refused(temp_root):
    temp_root.mkdir(mode=0o700)
    os.chown(temp_root, 4321, -1)
    with pytest.raises(StackError, match="owned by uid 4321"):
        claim_core(0, [0])
