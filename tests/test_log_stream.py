"""Progress bars in a rule's log: one line per redraw, no carriage returns, no blank lines (ftstudy.log_stream)."""

import io

from tqdm import tqdm

from ftstudy.log_stream import LineLog


def test_carriage_return_redraws_become_lines():
    raw = io.StringIO()
    log = LineLog(raw)
    log.write("2026-12-02 INFO start\n")
    log.write("\rchunk 1/2:   0%|          | 0/500")
    log.write("\rchunk 1/2:  26%|██▌       | 128/500")
    log.write("\rchunk 1/2: 100%|██████████| 500/500\n")
    log.write("done\n")
    assert raw.getvalue() == (
        "2026-12-02 INFO start\n"
        "chunk 1/2:   0%|          | 0/500\n"
        "chunk 1/2:  26%|██▌       | 128/500\n"
        "chunk 1/2: 100%|██████████| 500/500\n"
        "done\n"
    )


def test_a_real_tqdm_bar_writes_one_line_per_update():
    raw = io.StringIO()
    log = LineLog(raw)
    log.write("before\n")
    for _ in tqdm(range(5), file=log, mininterval=0, miniters=1, desc="items", ascii=True):
        pass
    log.write("after\n")
    lines = raw.getvalue().split("\n")
    assert "\r" not in raw.getvalue() and "" not in lines[:-1]  # no carriage return, no blank line
    bars = [ln for ln in lines if ln.startswith("items:")]
    counts = [b.split("|")[-1].split()[0] for b in bars]
    assert list(dict.fromkeys(counts)) == [f"{i}/5" for i in range(6)]  # 0/5 ... 5/5, each on its own line
    assert len(counts) <= 7  # tqdm redraws the final state once when it closes
    assert lines[0] == "before" and lines[-2] == "after"


def test_it_passes_for_the_file_it_wraps(tmp_path):
    """Libraries read sys.stderr's encoding and file descriptor (faulthandler, warnings, logging)."""
    with open(tmp_path / "job.log", "a", encoding="utf-8") as raw:
        log = LineLog(raw)
        assert log.encoding == "utf-8" and log.fileno() == raw.fileno() and not log.isatty()
        log.write("a\rb\n")
        log.flush()
        assert (tmp_path / "job.log").read_text() == "a\nb\n"
