"""Staging, checking and committing an attempt's frames in S3, against a real S3 API on loopback (moto's server)."""
from pathlib import Path

import pytest

from s3_server import S3Server
from synthfarm.farm import objectstore as o

pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def server():
    server = S3Server()
    server.bucket("data")
    yield server
    server.stop()


@pytest.fixture()
def s3(server):
    return server.client()


def attempt_files(folder: Path, job: int, frames=2) -> Path:
    for frame in range(frames):
        stem = f"{job:010}-{frame:04}-cam"
        for sub, suffix, body in (("images", ".png", b"png" * 100), ("depth", ".exr", b"exr" * 300),
                                  ("metadata", "-meta.json", b'{"m": 1}'), ("annotations", "-ann.json", b"{}")):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            (folder / sub / f"{stem}{suffix}").write_bytes(body + bytes([frame]))
    return folder


def keys(s3, prefix):
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket="data", Prefix=prefix).get("Contents", ()))


def test_commit_moves_a_checked_attempt_into_the_dataset(s3, tmp_path):
    dataset = o.Location.parse("s3://data/sets/ok")
    manifest = o.upload_attempt(s3, dataset, "a1", attempt_files(tmp_path, 7))
    assert len(manifest) == 8 and all(len(e["sha256"]) == 64 for e in manifest.values())
    assert len(keys(s3, "sets/ok/.staging/a1/")) == 8 and keys(s3, "sets/ok/images/") == []
    stems = o.commit_attempt(s3, dataset, "a1", 7, manifest)
    assert stems == ["0000000007-0000-cam", "0000000007-0001-cam"]
    assert keys(s3, "sets/ok/.staging/") == []
    listed = dict(o.list_dataset(s3, dataset))
    assert listed["images/0000000007-0001-cam.png"] == 301
    # the same job committed again (an at-least-once re-run) leaves one copy of each frame
    manifest = o.upload_attempt(s3, dataset, "a2", tmp_path)
    o.commit_attempt(s3, dataset, "a2", 7, manifest)
    assert dict(o.list_dataset(s3, dataset)) == listed
    fetched, skipped = o.download_dataset(s3, dataset, tmp_path / "down")
    assert (fetched, skipped) == (8, 0)
    assert (tmp_path / "down/depth/0000000007-0000-cam.exr").read_bytes() == b"exr" * 300 + b"\0"
    assert o.download_dataset(s3, dataset, tmp_path / "down") == (0, 8)  # resumes: nothing left to fetch


@pytest.mark.parametrize("damage", ["missing", "extra", "truncated", "replaced", "other job"])
def test_a_staging_that_differs_from_its_manifest_commits_nothing(s3, tmp_path, damage):
    dataset = o.Location.parse(f"s3://data/sets/{damage.replace(' ', '-')}")
    manifest = o.upload_attempt(s3, dataset, "bad", attempt_files(tmp_path, 3))
    key = dataset.staging("bad").key("images/0000000003-0000-cam.png")
    if damage == "missing":
        s3.delete_object(Bucket="data", Key=key)
    elif damage == "extra":
        s3.put_object(Bucket="data", Key=dataset.staging("bad").key("images/0000000003-0009-cam.png"), Body=b"x")
    elif damage == "truncated":
        s3.put_object(Bucket="data", Key=key, Body=b"png", ChecksumAlgorithm="SHA256")
    elif damage == "replaced":  # same size, no checksum: not what the worker uploaded
        s3.put_object(Bucket="data", Key=key, Body=b"PNG" * 100 + b"\0")
    elif damage == "other job":  # a worker claiming frames of a job it does not hold
        manifest = {k.replace("0000000003", "0000000004"): v for k, v in manifest.items()}
    with pytest.raises(o.StorageError):
        o.commit_attempt(s3, dataset, "bad", 3, manifest)
    assert o.list_dataset(s3, dataset) == []
    assert o.discard_prefix(s3, dataset.staging("bad")) >= 7
    assert keys(s3, dataset.key("")) == []


def test_locations_are_checked():
    assert o.Location.parse("s3://my-bucket/a/b/").key("x.png") == "a/b/x.png"
    assert o.Location.parse("s3://my-bucket").url == "s3://my-bucket"
    for bad in ("s3://B/x", "gs://bucket/x", "s3://bucket/a/../b", "s3://bucket/.staging/x", "s3://bucket//x"):
        with pytest.raises(o.StorageError, match="out"):
            o.Location.parse(bad)
    for rel in ("images/../../etc/passwd", "/images/0000000001-0000-cam.png", "images/x.png", "other/0000000001-0000-cam.png"):
        with pytest.raises(o.StorageError):
            o.frame_rel(rel)
    assert o.frame_rel("annotations/0000000001-0002-cam-ann.json", 1) == ("annotation", "0000000001-0002-cam")


def test_a_job_list_dataset_keeps_its_own_files_in_the_bucket(s3, tmp_path):
    """The coordinator's mirror holds the dataset's own files, the job list of a batch API batch among them:
    published, then fetched back into another coordinator's mirror (a resumed batch is checked against them)."""
    url = "s3://data/sets/listed"
    first = o.Buckets(tmp_path / "one")
    first._s3 = s3
    mirror = first.prepare(url)
    for name, body in (("dataset.yaml", "identity: {}\n"), ("recipe.yaml", "name: x\n"),
                       ("jobs.jsonl", '{"id": 0}\n'), ("job_list.jsonl", '{"params": {}, "seed": 3}\n')):
        (mirror / name).write_text(body)
    first.publish(url)
    again = o.Buckets(tmp_path / "two")
    again._s3 = s3
    fetched = again.prepare(url)
    assert sorted(p.name for p in fetched.iterdir()) == ["dataset.yaml", "job_list.jsonl", "jobs.jsonl", "recipe.yaml"]
    assert (fetched / "job_list.jsonl").read_text() == '{"params": {}, "seed": 3}\n'
