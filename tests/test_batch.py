"""Whole archives: many inputs, folders and globs, a manifest, resume, Parquet, Dask.

Every output must equal the single-file run of its capture (checked against the oracle,
which the single-file runs equal elsewhere), byte for byte; failures are reported and the
batch goes on; a rerun rewrites nothing.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fastpcap

from conftest import MS, T0, cli_env, episode, one_error_line, run_on_a_terminal
from oracle import oracle
from pcapgen import Rec, compress, eth, ipv4, pcap, udp

MANIFEST = "_fastpcap_manifest.jsonl"


def make_tree(root: Path) -> dict[str, bytes]:
    """An archive: plain, gzip and zstd captures (classic and pcapng) in nested folders, one
    corrupt capture, and files that are not captures.  Returns each capture's bytes by its
    path relative to ``root`` (the corrupt one included)."""
    captures = {
        "ep0.pcap": episode(30),
        "a/ep1.pcap": episode(60, gap_s=2),
        "a/b/ep2.pcap.gz": episode(90),
        "a/b/ep3.pcapng.zst": episode(45),
        "c/ep4.cap": pcap([Rec(T0 + i * 7 * MS, eth(ipv4(udp(5000 + i, 53), proto=17))) for i in range(200)]),
        "c/noext": episode(10),
        "c/broken.pcap": episode(20) + pcap([Rec(T0 + 10**9, b"x", incl_len=1 << 30)])[24:],
    }
    for rel, data in captures.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = {".gz": "gzip", ".zst": "zstd"}.get(path.suffix)
        path.write_bytes(compress(data, kind) if kind else data)
    (root / "README.txt").write_text("not a capture\n")
    (root / "a" / "notes.gz").write_bytes(gzip.compress(b"a compressed text file, not a capture\n"))
    (root / "c" / "empty").write_bytes(b"")
    return captures


EXPECTED_OUTPUTS = {"ep0.jsonl": "ep0.pcap", "a/ep1.jsonl": "a/ep1.pcap", "a/b/ep2.jsonl": "a/b/ep2.pcap.gz",
                    "a/b/ep3.jsonl": "a/b/ep3.pcapng.zst", "c/ep4.jsonl": "c/ep4.cap", "c/noext.jsonl": "c/noext"}


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "archive"
    return root, make_tree(root)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_archive_in_one_command(cli, tree, tmp_path: Path, jobs: str) -> None:
    root, captures = tree
    out = tmp_path / "out"
    proc = cli("bucketize", root, "-o", out, "--jobs", jobs)
    err = proc.stderr.decode().splitlines()
    assert proc.returncode == 1, err  # one capture failed
    broken = root / "c" / "broken.pcap"
    assert sorted(err[:-1]) == [
        f"fastpcap: error: {broken}: byte offset {len(episode(20))}: record 21 claims 1073741824 captured bytes, "
        "more than the 262144 libpcap allows for link type EN10MB(1); the file is corrupt",
        # ep4 holds only queries to the bridge: each capture's warnings are reported with its name
        f"fastpcap: warning: {root / 'c' / 'ep4.cap'}: no IP packet came from the host address 10.200.0.1, so "
        "every row counts 0 packets out; if the capture's own address is another, give it with --bridge-ip or "
        "--host-ip (bridge_ip=, host_ips=)",
    ]
    assert err[-1].startswith("fastpcap: 7 captures: 6 written, 0 up to date, 1 failed; 3 other files ignored; "
                              f"{sum(oracle(captures[c]).packets for c in EXPECTED_OUTPUTS.values()):,} packets, ")
    got = outputs(out)
    assert set(got) == set(EXPECTED_OUTPUTS)
    for output, capture in EXPECTED_OUTPUTS.items():
        assert got[output] == oracle(captures[capture]).jsonl, output

    entries = {e["relative"]: e for e in manifest(out)}
    assert set(entries) == set(EXPECTED_OUTPUTS.values()) | {"c/broken.pcap"}
    for rel, entry in entries.items():
        assert entry["input"] == str(root / rel) and entry["given"] == str(root)
        assert entry["size"] == (root / rel).stat().st_size and entry["mtime_ns"] == (root / rel).stat().st_mtime_ns
        assert entry["options"] == fastpcap.BucketSpec().to_dict() and entry["version"] == fastpcap.__version__
        assert entry["seconds"] >= 0
        if rel == "c/broken.pcap":
            assert (entry["status"], entry["output_size"], entry["rows"]) == ("failed", None, 0)
            assert "fastpcap: error: " + entry["error"] in err
        else:
            assert entry["status"] == "written" and entry["error"] is None
            assert entry["output_size"] == (out / entry["output"]).stat().st_size
            assert entry["rows"] == len(oracle(captures[rel]).rows)
            assert entry["packets"] == oracle(captures[rel]).packets

    # Rerun: nothing is rewritten (same inodes, same times), the manifest says skipped.
    def stamps() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.jsonl") if p.name != MANIFEST}

    before = stamps()
    proc = cli("bucketize", root, "-o", out, "--jobs", jobs)
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines()[-1].startswith("fastpcap: 7 captures: 0 written, 6 up to date, 1 failed")
    assert stamps() == before
    rerun = manifest(out)[len(entries):]
    assert sorted(e["status"] for e in rerun) == ["failed"] + ["skipped"] * 6

    # A deleted output is redone; one whose size changed too; --force redoes everything.
    (out / "a" / "ep1.jsonl").unlink()
    with open(out / "c" / "ep4.jsonl", "ab") as f:
        f.write(b"tampered\n")
    proc = cli("bucketize", root, "-o", out, "--jobs", jobs)
    assert proc.stderr.decode().splitlines()[-1].startswith("fastpcap: 7 captures: 2 written, 4 up to date, 1 failed")
    assert outputs(out) == got
    proc = cli("bucketize", root, "-o", out, "--jobs", jobs, "--force")
    assert proc.stderr.decode().splitlines()[-1].startswith("fastpcap: 7 captures: 6 written, 0 up to date, 1 failed")
    # Changed options change the rows: nothing is up to date.
    proc = cli("bucketize", root, "-o", out, "--jobs", jobs, "--bucket-ms", "10")
    assert proc.stderr.decode().splitlines()[-1].startswith("fastpcap: 7 captures: 6 written, 0 up to date, 1 failed")
    assert outputs(out)["ep0.jsonl"] == oracle(captures["ep0.pcap"], bucket_ms=10).jsonl


def test_a_changed_input_is_redone(cli, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.pcap").write_bytes(episode(10))
    out = tmp_path / "out"
    cli("bucketize", src, "-o", out, check=True)
    (src / "x.pcap").write_bytes(episode(20))
    proc = cli("bucketize", src, "-o", out, check=True)
    assert "1 written, 0 up to date" in proc.stderr.decode()
    assert (out / "x.jsonl").read_bytes() == oracle(episode(20)).jsonl


def test_a_manifest_from_before_an_option_existed(cli, tmp_path: Path) -> None:
    # An option added since the manifest was written (tunnels, here) had its default then:
    # the capture is up to date at the default and redone at another value.
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.pcap").write_bytes(episode(10))
    out = tmp_path / "out"
    cli("bucketize", src, "-o", out, "--decode", "extended", check=True)
    lines = manifest(out)
    assert lines[-1]["options"]["tunnels"] == "outer"
    del lines[-1]["options"]["tunnels"]
    (out / MANIFEST).write_text("".join(json.dumps(line) + "\n" for line in lines))
    proc = cli("bucketize", src, "-o", out, "--decode", "extended", check=True)
    assert "0 written, 1 up to date" in proc.stderr.decode()
    proc = cli("bucketize", src, "-o", out, "--decode", "extended", "--tunnels", "inner", check=True)
    assert "1 written, 0 up to date" in proc.stderr.decode()
    assert manifest(out)[-1]["options"]["tunnels"] == "inner"


def test_inputs_named_directly_and_globs(cli, tree, tmp_path: Path) -> None:
    root, captures = tree
    out = tmp_path / "out"
    os.chdir(tmp_path)
    proc = cli("bucketize", root / "a" / "ep1.pcap", "archive/**/*.pcap*", "-o", out)
    assert proc.returncode == 1  # broken.pcap matches the glob
    got = outputs(out)
    # named directly: OUT/<its name>; through the glob: OUT/<its path under the glob's folder>
    assert set(got) == {"ep1.jsonl", "ep0.jsonl", "a/ep1.jsonl", "a/b/ep2.jsonl", "a/b/ep3.jsonl"}
    assert got["ep1.jsonl"] == got["a/ep1.jsonl"] == oracle(captures["a/ep1.pcap"]).jsonl
    assert got["a/b/ep3.jsonl"] == oracle(captures["a/b/ep3.pcapng.zst"]).jsonl


def test_two_captures_one_output_is_a_usage_error(cli, tmp_path: Path) -> None:
    for name in ("x/ep.pcap", "y/ep.pcap.gz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(episode(5))
    out = tmp_path / "out"
    line = one_error_line(cli("bucketize", tmp_path / "x" / "ep.pcap", tmp_path / "y" / "ep.pcap.gz", "-o", out))
    assert line == (f"fastpcap: error: {tmp_path}/x/ep.pcap and {tmp_path}/y/ep.pcap.gz would both be written to "
                    f"{out}/ep.jsonl; rename one, or process them in separate runs")
    assert not out.exists()  # found before anything ran


@pytest.mark.parametrize(("args", "message"), [
    ([], "many captures need an output folder"),
    (["-o", "-"], "many captures need an output folder, not stdout"),
    (["-o", "OUT", "--append"], "--append is for one capture"),
])
def test_batch_usage_errors(cli, tree, args: list[str], message: str) -> None:
    root, _ = tree
    proc = cli("bucketize", root, *args)
    assert proc.returncode == 2 and message in proc.stderr.decode() and b"Traceback" not in proc.stderr


def test_stdin_cannot_be_one_of_many(cli, tree, tmp_path: Path) -> None:
    root, _ = tree
    line = one_error_line(cli("bucketize", root, "-", "-o", tmp_path / "out"))
    assert line == "fastpcap: error: stdin ('-') can only be read alone, not as one of many inputs"


def test_a_second_run_on_the_same_folder_is_refused(cli, tree, tmp_path: Path) -> None:
    root, _ = tree
    out = tmp_path / "out"
    out.mkdir()
    import fcntl

    with open(out / MANIFEST, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        line = one_error_line(cli("bucketize", root, "-o", out))
    assert line == f"fastpcap: error: {out}: another fastpcap run is writing to this folder"


# -- formats ------------------------------------------------------------------------------


def rows_from_jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def test_parquet_outputs_equal_the_jsonl(cli, tree, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, captures = tree
    out = tmp_path / "out"
    proc = cli("bucketize", root, "-o", out, "--format", "parquet")
    assert proc.returncode == 1
    for output, capture in EXPECTED_OUTPUTS.items():
        table = pq.read_table(out / output.replace(".jsonl", ".parquet"))
        assert table.column_names == list(fastpcap.rows.KEYS)
        for field in table.schema:
            want = {"source": pa.string(), "available_in_deployment": pa.bool_()}.get(field.name, pa.int64())
            assert field.type == want, field
        assert table.to_pylist() == rows_from_jsonl(oracle(captures[capture]).jsonl), output
        meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
        assert meta["fastpcap.source_capture"] == str(root / capture)
        assert (meta["fastpcap.bucket_ms"], meta["fastpcap.bridge_ip"], meta["fastpcap.version"]) == (
            "100", "10.200.0.1", fastpcap.__version__)
        assert json.loads(meta["fastpcap.host_ips"]) == ["10.200.0.1"]


def test_combine_streams_every_capture_into_one_table(cli, tree, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root, captures = tree
    combined = tmp_path / "all.parquet"
    proc = cli("bucketize", root, "--combine", combined, "--jobs", "2")
    assert proc.returncode == 1 and not (tmp_path / "out").exists()
    table = pq.read_table(combined)
    assert table.column_names == ["capture", *fastpcap.rows.KEYS]
    # the plan's order, whatever the order the captures finished in: a folder's files (sorted)
    # before its subfolders' (sorted)
    order = ("ep0.pcap", "a/ep1.pcap", "a/b/ep2.pcap.gz", "a/b/ep3.pcapng.zst", "c/ep4.cap", "c/noext")
    want = [{"capture": c, **row} for c in order for row in rows_from_jsonl(oracle(captures[c]).jsonl)]
    assert table.to_pylist() == want
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []  # its parts are gone
    # With -o too: per-capture outputs, and a rerun takes up-to-date captures' rows from them.
    out = tmp_path / "out"
    cli("bucketize", root, "-o", out, "--combine", combined)
    first = pq.read_table(combined)
    proc = cli("bucketize", root, "-o", out, "--combine", combined)
    assert "0 written, 6 up to date" in proc.stderr.decode()
    assert pq.read_table(combined).equals(first) and first.to_pylist() == table.to_pylist()


def test_single_capture_parquet_and_compressed_jsonl(cli, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    import zstandard

    data = episode(80)
    src = tmp_path / "c.pcap"
    src.write_bytes(data)
    want = oracle(data).jsonl
    cli("bucketize", src, "-o", tmp_path / "r.parquet", "--format", "parquet", check=True)
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == rows_from_jsonl(want)
    for name, unpack in (("r.jsonl.gz", gzip.decompress), ("r.jsonl.xz", lzma.decompress),
                         ("r.jsonl.zst", lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b))):
        cli("bucketize", src, "-o", tmp_path / name, check=True)
        assert unpack((tmp_path / name).read_bytes()) == want, name
    assert subprocess.run(["zcat", tmp_path / "r.jsonl.gz"], capture_output=True, check=True).stdout == want
    cli("bucketize", src, "-o", tmp_path / "r.jsonl.gz", "--append", check=True)  # a second member
    assert subprocess.run(["zcat", tmp_path / "r.jsonl.gz"], capture_output=True, check=True).stdout == want + want


def test_batch_compressed_outputs(cli, tree, tmp_path: Path) -> None:
    root, captures = tree
    out = tmp_path / "out"
    cli("bucketize", root, "-o", out, "--compress", "gz")
    got = outputs(out)
    assert set(got) == {name + ".gz" for name in EXPECTED_OUTPUTS}
    for output, capture in EXPECTED_OUTPUTS.items():
        assert gzip.decompress(got[output + ".gz"]) == oracle(captures[capture]).jsonl


# -- the API --------------------------------------------------------------------------------


def test_bucketize_many_api(tree, tmp_path: Path) -> None:
    root, captures = tree
    events = []
    result = fastpcap.bucketize_many(root, tmp_path / "out", jobs=1, progress=events.append, bucket_ms=50)
    assert (result.written, result.skipped, result.failed, result.ignored, result.status) == (6, 0, 1, 3, 1)
    by_rel = {r.capture.relative: r.outcome for r in result.results}
    assert by_rel["c/broken.pcap"].status == "failed" and "record 21 claims" in by_rel["c/broken.pcap"].error
    assert by_rel["a/ep1.pcap"].rows == len(oracle(captures["a/ep1.pcap"], bucket_ms=50).rows)
    assert [e.kind for e in events][0] == "plan" and events[-1].kind == "end"
    assert sum(e.kind == "capture" for e in events) == 7
    assert (tmp_path / "out" / "ep0.jsonl").read_bytes() == oracle(captures["ep0.pcap"], bucket_ms=50).jsonl


def test_a_list_of_paths_points_to_bucketize_many(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="bucketize_many"):
        fastpcap.bucket_rows([tmp_path / "a.pcap", tmp_path / "b.pcap"])


def test_bucket_table_and_frame(tmp_path: Path) -> None:
    data = episode(40)
    src = tmp_path / "c.pcap"
    src.write_bytes(data)
    want = rows_from_jsonl(oracle(data).jsonl)
    table = fastpcap.bucket_table(src)
    assert table.to_pylist() == want and table.column_names == list(fastpcap.rows.KEYS)
    frame = fastpcap.bucket_frame(src)
    assert frame.to_dict("records") == want and list(frame.columns) == list(fastpcap.rows.KEYS)


def test_missing_optional_library_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'fastpcap\[parquet\]'"):
        fastpcap.bucket_table(tmp_path / "c.pcap")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'fastpcap\[pandas\]'"):
        fastpcap.bucket_frame(tmp_path / "c.pcap")


# -- interruptions ----------------------------------------------------------------------


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_an_interrupted_run_finishes_on_the_next(backend: str, tmp_path: Path, how: int) -> None:
    src = tmp_path / "in"
    src.mkdir()
    data = episode(3000)
    for i in range(40):
        (src / f"ep{i:02d}.pcap").write_bytes(data)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fastpcap", "bucketize", str(src), "-o", str(out), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env=cli_env(backend))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("ep*.jsonl"))) < 3:
        time.sleep(0.01)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (128 + how, -how) and b"Traceback" not in err, err
    done = {p.name for p in out.glob("ep*.jsonl")}
    assert 3 <= len(done) < 40
    want = oracle(data).jsonl
    assert all((out / name).read_bytes() == want for name in done)  # never a partial output
    recorded = sum(e.get("status") == "written" for e in manifest_lines(out))
    with open(out / MANIFEST, "ab") as f:  # as if killed in the middle of a line
        f.write(b'{"input": "half a line')
    proc = subprocess.run(cmd, capture_output=True, env=cli_env(backend), timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = proc.stderr.decode().splitlines()[-1]
    assert summary.startswith(f"fastpcap: 40 captures: {40 - recorded} written, {recorded} up to date, 0 failed")
    assert sorted(p.name for p in out.iterdir()) == sorted([f"ep{i:02d}.jsonl" for i in range(40)] + [MANIFEST])
    assert all((out / f"ep{i:02d}.jsonl").read_bytes() == want for i in range(40))


def manifest_lines(folder: Path) -> list[dict]:
    entries = []
    for line in (folder / MANIFEST).read_bytes().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


# -- a Dask cluster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    """A real dask.distributed cluster: a scheduler and two worker processes, loopback only."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        yield cluster


def test_dask_engine_gives_the_local_engines_outputs(cli, tree, tmp_path: Path, dask_cluster) -> None:
    root, _ = tree
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert cli("bucketize", root, "-o", local, "--jobs", "2").returncode == 1
    proc = cli("bucketize", root, "-o", remote, "--engine", "dask", "--scheduler", dask_cluster.scheduler_address)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.decode().splitlines()[-1].startswith("fastpcap: 7 captures: 6 written, 0 up to date, 1 failed")
    assert outputs(remote) == outputs(local)
    strip = ("seconds", "time")
    assert sorted(tuple((k, str(v)) for k, v in e.items() if k not in strip) for e in manifest(remote)) == \
        sorted(tuple((k, str(v)) for k, v in e.items() if k not in strip) for e in manifest(local))
    # Resume works the same through the cluster; and the scheduler can come from the environment.
    env_proc = cli("bucketize", root, "-o", remote, "--engine", "dask",
                   env={"DASK_SCHEDULER_ADDRESS": dask_cluster.scheduler_address})
    assert "0 written, 6 up to date, 1 failed" in env_proc.stderr.decode()


def test_dask_api_with_a_client_and_parquet(tree, tmp_path: Path, dask_cluster) -> None:
    import distributed
    import pyarrow.parquet as pq

    root, captures = tree
    with distributed.Client(dask_cluster) as client:
        result = fastpcap.bucketize_many(root, tmp_path / "out", engine="dask", client=client, format="parquet",
                                         combine=tmp_path / "all.parquet", progress=False)
    assert (result.written, result.failed) == (6, 1)
    table = pq.read_table(tmp_path / "out" / "a" / "b" / "ep2.parquet")
    assert table.to_pylist() == rows_from_jsonl(oracle(captures["a/b/ep2.pcap.gz"]).jsonl)
    assert pq.read_table(tmp_path / "all.parquet").num_rows == sum(
        len(oracle(captures[c]).rows) for c in EXPECTED_OUTPUTS.values())


def test_dask_engine_starts_a_local_cluster(cli, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"ep{i}.pcap").write_bytes(episode(20 + i))
    proc = cli("bucketize", src, "-o", tmp_path / "out", "--engine", "dask", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    for i in range(3):
        assert (tmp_path / "out" / f"ep{i}.jsonl").read_bytes() == oracle(episode(20 + i)).jsonl


@pytest.mark.parametrize("quiet", [False, True], ids=["bar", "quiet"])
def test_batch_progress_on_a_terminal(backend: str, tmp_path: Path, quiet: bool) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(30):
        (src / f"ep{i:02d}.pcap").write_bytes(episode(4000))
    (src / "zz-broken.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20) + b"\x00" * 8 + b"\xff" * 8)
    args = ["bucketize", str(src), "-o", str(tmp_path / "out"), "--jobs", "1", *(["--quiet"] if quiet else [])]
    status, seen = run_on_a_terminal(args, backend, (24, 120))
    text = seen.decode(errors="replace")
    assert status == 1
    assert "fastpcap: error: " in text and "fastpcap: 31 captures: 30 written, 0 up to date, 1 failed" in text
    if quiet:
        assert "%|" not in text and text.count("\n") == 2
    else:  # the bar moved: several states of it, with captures done and the failures so far
        states = {m for m in text.split("\r") if "captures" in m and "%|" in m}
        assert len(states) >= 3, text
        assert any("31/31 captures" in m for m in states) or any("30/31 captures" in m for m in states)
        assert any("1 failed" in m for m in states)
