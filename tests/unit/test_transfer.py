"""Inputs by content hash and outputs in chunks; no path may leave its folder."""
import json
import os
from pathlib import Path

import pytest

from synthfarm.addon.core.recipe import RecipeError, load_recipe, parse_recipe_text
from synthfarm.farm.transfer import (CHUNK, VERSION, AttemptFiles, BlobStore, TransferError, TransferServer,
                                     make_bundle, safe_relative, sha256_file)

ROOT = Path(__file__).resolve().parents[2]


def test_bundle_of_the_toybox_recipe():
    recipe_path = ROOT / "assets" / "recipes" / "toybox.yaml"
    root, recipe_rel, manifest = make_bundle(load_recipe(recipe_path), recipe_path)
    assert root == ROOT / "assets" and recipe_rel == "recipes/toybox.yaml"
    assert {"toys/duck.blend", "toybox/bin.obj", "toybox/bin.mtl", "recipes/toybox.yaml"} <= set(manifest)
    assert "toybox/materials.blend" not in manifest  # not named by the recipe
    assert manifest["toys/duck.blend"] == sha256_file(root / "toys" / "duck.blend")


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "a/../../b", "~/x", ""])
def test_paths_cannot_escape(bad, tmp_path):
    with pytest.raises(TransferError, match="leave"):
        safe_relative(bad)
    store = BlobStore(tmp_path / "blobs")
    digest = store.add_file(Path(__file__))
    with pytest.raises(TransferError):
        store.layout({bad: digest}, tmp_path / "bundle")


def test_a_job_recipe_cannot_reach_outside_its_bundle(tmp_path):
    text = (ROOT / "tests" / "data" / "tiny.yaml").read_text().replace(
        "generators:", "generators:\n  - {name: x, kind: asset, source: ../../../etc/hosts}", 1)
    with pytest.raises(RecipeError, match="leaves the job's folder"):
        parse_recipe_text(text, tmp_path / "bundle" / "recipes", root=tmp_path / "bundle", check_files=False)


def frames(kind, header, data=b""):
    import json
    return [VERSION, kind.encode(), json.dumps(header).encode(), data]


def test_server_chunks_in_and_out(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    running = {"att": AttemptFiles(tmp_path / "staging" / "att", 0, 1, "w")}
    server = TransferServer(store, running.get)
    payload = os.urandom(CHUNK * 2 + 123)
    source = tmp_path / "file.bin"
    source.write_bytes(payload)
    digest = sha256_file(source)
    assert server.handle(frames("HAS_BLOBS", {"hashes": [digest]}))[2] == b'{"missing": ["%s"]}' % digest.encode()
    for offset in range(0, len(payload), CHUNK):
        reply = server.handle(frames("PUT_BLOB", {"hash": digest, "offset": offset, "size": len(payload)},
                                     payload[offset:offset + CHUNK]))
        assert reply[1] == b"ACK"
    assert store.path(digest).read_bytes() == payload
    reply = server.handle(frames("GET_BLOB", {"hash": digest, "offset": CHUNK}))
    assert reply[1] == b"CHUNK" and reply[3] == payload[CHUNK:2 * CHUNK]
    image = "images/0000000000-0000-cam.png"
    ok = server.handle(frames("PUT_OUTPUT", {"attempt_id": "att", "path": image, "offset": 0, "size": 3}, b"png"),
                       sender=b"w")
    assert ok[1] == b"ACK" and (running["att"].staging / image).read_bytes() == b"png"
    for header, sender in (({"attempt_id": "stale", "path": image, "offset": 0, "size": 1}, b"w"),
                           ({"attempt_id": "att", "path": image, "offset": 0, "size": 1}, b"another-worker"),
                           ({"attempt_id": "att", "path": "../../escape", "offset": 0, "size": 1}, b"w"),
                           ({"attempt_id": "att", "path": "images/0000000002-0000-cam.png", "offset": 0, "size": 1},
                            b"w"),
                           ({"attempt_id": "att", "path": "images/0000000000-0001-cam.png", "offset": 0, "size": 1},
                            b"w"),
                           ({"attempt_id": "att", "path": image, "offset": 5, "size": 9}, b"w")):
        assert server.handle(frames("PUT_OUTPUT", header, b"x"), sender=sender)[1] == b"ERROR", header
    damaged = server.handle(frames("PUT_BLOB", {"hash": "0" * 64, "offset": 0, "size": 1}, b"x"))
    assert damaged[1] == b"ERROR" and b"damaged" in damaged[2]
    assert server.handle([b"junk"])[1] == b"ERROR"


def test_the_files_listed_to_resume_an_upload_are_durable(tmp_path, monkeypatch):
    """A coordinator that crashed after a file's last chunk and before its fsync lists it whole on the resume, and
    the worker then skips it: listing it makes it durable first."""
    running = {"att": AttemptFiles(tmp_path / "staging" / "att", 0, 1, "w")}
    server = TransferServer(BlobStore(tmp_path / "blobs"), running.get)
    image = running["att"].staging / "images" / "0000000000-0000-cam.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"png")  # written, never fsynced: as the crash left it
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (real_fsync(fd), synced.append(os.readlink(f"/proc/self/fd/{fd}"))))
    reply = server.handle(frames("OUTPUT_STATE", {"attempt_id": "att"}), sender=b"w")
    assert reply[1] == b"ACK" and json.loads(reply[2]) == {"files": [["images/0000000000-0000-cam.png", 3]]}
    assert synced == [str(image)]
