"""Downloads against a local HTTP server on 127.0.0.1 (never the internet): tar.gz / gz / plain sources in the
official layout, size and checksum checks, atomic unpacking, and the Snakemake download rule."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from ftstudy.download import DownloadError, download_source

REPO = Path(__file__).resolve().parents[1]

FILES = {
    "collection.tsv": b'0\tA "quoted" passage about cats.\n1\tDogs are loyal.\n2\tdon\xc3\xa2\xc2\x80\xc2\x99t panic\n',
    "queries.train.tsv": b"100\twhat are cats\n101\tloyal animals\n",
    "qrels.train.tsv": b"100\t0\t0\t1\n101\t0\t1\t1\n",
    "queries.dev.small.tsv": b"200\tpanic\n201\tunjudged query\n",
    "qrels.dev.small.tsv": b"200\t0\t2\t1\n",
    "queries.eval.small.tsv": b"300\tnot requested\n",
}
TRIPLES = b"what are cats\tA cat passage\tA dog passage\nloyal animals\tDogs are loyal.\tCats sleep.\n"
DL_QUERIES = b"1\tdl query one\n2\tdl query two\n"
DL_QRELS = b"1 Q0 0 3\n1 Q0 1 0\n2 Q0 2 1\n"


def _targz(members: dict[str, bytes], prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A threaded static server on 127.0.0.1 serving the tiny archives; shut down after the module."""
    root = tmp_path_factory.mktemp("www")
    sources = {
        "collectionandqueries.tar.gz": _targz(FILES),
        "triples.train.small.tar.gz": _targz({"triples.train.small.tsv": TRIPLES}, prefix="./"),
        "msmarco-test2019-queries.tsv.gz": gzip.compress(DL_QUERIES),
        "2019qrels-pass.txt": DL_QRELS,
        "broken.tar.gz": b"this is not a gzip file",
    }
    for name, data in sources.items():
        (root / name).write_bytes(data)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    httpd.daemon_threads = True
    httpd.timeout = 10
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in sources.items()}
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in sources.items()}
    sizes = {name: len(data) for name, data in sources.items()}
    yield {"base": base, "md5": md5, "sha256": sha, "size": sizes}
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _sources(s):
    b = s["base"]
    return {
        "collectionandqueries": {
            "url": f"{b}/collectionandqueries.tar.gz",
            "md5": s["md5"]["collectionandqueries.tar.gz"],
            "sha256": s["sha256"]["collectionandqueries.tar.gz"],
            "size": s["size"]["collectionandqueries.tar.gz"],
            "files": [
                "collection.tsv",
                "queries.train.tsv",
                "qrels.train.tsv",
                "queries.dev.small.tsv",
                "qrels.dev.small.tsv",
            ],
        },
        "triples_train_small": {
            "url": f"{b}/triples.train.small.tar.gz",
            "md5": None,
            "files": ["triples.train.small.tsv"],
        },
        "dl19_queries": {
            "url": f"{b}/msmarco-test2019-queries.tsv.gz",
            "md5": s["md5"]["msmarco-test2019-queries.tsv.gz"],
            "files": ["msmarco-test2019-queries.tsv"],
        },
        "dl19_qrels": {
            "url": f"{b}/2019qrels-pass.txt",
            "sha256": s["sha256"]["2019qrels-pass.txt"],
            "files": ["2019qrels-pass.txt"],
        },
    }


def test_download_each_kind_of_source(server, tmp_path):
    data, partial = tmp_path / "data", tmp_path / "partial"
    for name, src in _sources(server).items():
        out = download_source(name, src, data, partial / name, progress=False)
        assert sorted(p.name for p in out) == sorted(src["files"])
        assert not (partial / name).exists(), "the partial download is removed on success"
    for name in FILES:
        if name != "queries.eval.small.tsv":
            assert (data / name).read_bytes() == FILES[name]
    assert not (data / "queries.eval.small.tsv").exists(), "only the listed files are unpacked"
    assert (data / "triples.train.small.tsv").read_bytes() == TRIPLES
    assert (data / "msmarco-test2019-queries.tsv").read_bytes() == DL_QUERIES
    assert (data / "2019qrels-pass.txt").read_bytes() == DL_QRELS
    assert sorted(p.name for p in data.iterdir()) == sorted(
        [n for n in FILES if n != "queries.eval.small.tsv"]
        + ["triples.train.small.tsv", "msmarco-test2019-queries.tsv", "2019qrels-pass.txt"]
    ), "no temporary files left behind"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"md5": "0" * 32}, "md5 .*, expected 00000000"),
        ({"sha256": "f" * 64}, "sha256 .*, expected ffff"),
        ({"size": 12}, r"size \d+ bytes, expected 12"),
        ({"files": ["collection.tsv", "not-in-archive.tsv"]}, r"no member named \['not-in-archive.tsv'\]"),
    ],
)
def test_mismatch_fails_and_leaves_nothing(server, tmp_path, change, message):
    src = {**_sources(server)["collectionandqueries"], **change}
    data, partial = tmp_path / "data", tmp_path / "partial"
    with pytest.raises(DownloadError, match=message):
        download_source("collectionandqueries", src, data, partial, progress=False)
    assert not data.exists() or list(data.iterdir()) == []
    if "files" not in change:
        assert not partial.exists() or list(partial.iterdir()) == [], "a download that fails its check is deleted"


def test_http_errors_and_corrupt_archives(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_source(
            "x",
            {"url": f"{server['base']}/missing.tsv", "files": ["a.tsv"]},
            tmp_path / "d",
            tmp_path / "p",
            progress=False,
        )
    with pytest.raises(DownloadError, match="cannot unpack"):
        download_source(
            "x",
            {"url": f"{server['base']}/broken.tar.gz", "files": ["a.tsv"]},
            tmp_path / "d",
            tmp_path / "p",
            progress=False,
        )
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


def test_stale_partial_is_replaced_when_the_server_ignores_ranges(server, tmp_path):
    """http.server answers a Range request with the whole body (200): the partial file must restart."""
    src = _sources(server)["dl19_qrels"]
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "2019qrels-pass.txt").write_bytes(b"junk from an interrupted run")
    download_source("dl19_qrels", src, tmp_path / "data", partial, progress=False)
    assert (tmp_path / "data" / "2019qrels-pass.txt").read_bytes() == DL_QRELS


@pytest.mark.workflow
def test_download_rule_then_data_stage(server, tmp_path):
    """snakemake with download: true fetches the files into an empty dataset_dir and prepares them."""
    wd = tmp_path / "wd"
    shutil.copytree(REPO / "config", wd / "config")
    cfg = {
        "dataset_dir": "data/msmarco",
        "download": True,
        "download_sources": {k: v for k, v in _sources(server).items() if k != "triples_train_small"},
        "eval_sets": {
            "dev": {"queries": "queries.dev.small.tsv", "qrels": "qrels.dev.small.tsv"},
            "dl19": {"queries": "msmarco-test2019-queries.tsv", "qrels": "2019qrels-pass.txt", "min_relevance": 2},
        },
    }
    (wd / "dl.yaml").write_text(yaml.safe_dump(cfg))
    # Five jobs (each pays Python start-up): three downloads, the collection and one eval set.
    targets = ["results/data/eval/dl19/queries.parquet", "data/msmarco/queries.dev.small.tsv"]
    cmd = [
        str(Path(sys.executable).parent / "snakemake"),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(wd),
        "--cores",
        "2",
        *targets,
        "--configfile",
        str(wd / "dl.yaml"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rule in (
        "download_collectionandqueries",
        "download_dl19_queries",
        "download_dl19_qrels",
    ):
        assert f"rule {rule}:" in proc.stderr + proc.stdout
    assert (wd / "data/msmarco/collection.tsv").read_bytes() == FILES["collection.tsv"]
    assert pq.read_table(wd / "results/data/collection.parquet").num_rows == 3
    assert (wd / "data/msmarco/queries.dev.small.tsv").read_bytes() == FILES["queries.dev.small.tsv"]
    assert pq.read_table(wd / "results/data/eval/dl19/queries.parquet").column("qid").to_pylist() == [1]
    assert "1 dropped" in (wd / "logs/prepare_eval_set/dl19.log").read_text()
