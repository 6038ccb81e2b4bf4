"""The processor shape: a toy processor for a made-up format, registered with one line, is
routed, counted and reported through ``wavedqm process`` and the watching daemon, with no other
file touched; a second processor of the light processor's files gets every ``.FLOW.hdf5`` file
too; failures are counted once; switched-off processors are not imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wavedqm.cli import main
from wavedqm.config import Config
from wavedqm.daemon.app import DaemonApp
from wavedqm.processors import registry
from wavedqm.processors.router import Router, watch_patterns
from wavedqm.simulate.flow import write_flow_file

from netutil import free_port, http_get, metric_value, wait_for
from pdfutil import page_text, pdf_pages
from toyproc import FLOW_ROWS, TOY


def write_toy(path: Path, values: list[str]) -> Path:
    path.write_text("TOYDQM1\n" + "".join(f"{v}\n" for v in values))
    return path


@pytest.fixture
def with_toys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registry line each of the two toy processors needs."""
    monkeypatch.setattr(registry, "REGISTRY", [*registry.REGISTRY, TOY, FLOW_ROWS])


def _value(registry_text: str, name: str, **labels: str) -> float | None:
    return metric_value(registry_text, name, **labels)


def test_toy_processor_through_process(tmp_path: Path, with_toys: None, capsys) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    a = write_toy(data / "a.toy", ["1", "2", "3"])
    b = write_toy(data / "sub" / "b.toy", ["10", "20"])
    bad = write_toy(data / "c.toy", ["1", "fail"])
    light = data / "x_p0.FLOW.hdf5"
    write_flow_file(light, n_events=6, seed=1)
    (data / "notes.txt").write_text("not a data file\n")
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    out, state = tmp_path / "out", tmp_path / "state"
    code = main(["process", str(data), "--out", str(out), "--state", str(state)])
    assert code == 1  # c.toy failed
    printed = capsys.readouterr()
    assert f"{a}: toy: 3 values, total 6" in printed.out
    assert f"{b}: toy: 2 values, total 30" in printed.out
    assert str(bad) in printed.err and "a 'fail' line" in printed.err
    assert json.loads((out / "a.toy" / "summary.json").read_text())["toy"] == {"total": 6}
    assert (out / "b.toy" / "toy.txt").read_text() == "30\n"
    assert pdf_pages(out / "a.toy" / "report.pdf") == 1  # the toy's one page
    assert "toy total 6" in page_text(out / "a.toy" / "report.pdf")
    # the light file went to the light processor and to the second FLOW processor
    summary = json.loads((out / light.name / "summary.json").read_text())
    assert summary["events"] == 6 and summary["flowrows"] == 6
    assert list(summary)[:3] == ["file", "format", "wavedqm_version"]  # light's keys first
    assert not (out / "notes.txt").exists() and not (out / "c.toy" / "toy.txt").exists()
    after = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert after == before  # inputs untouched, nothing written into the data folder


def test_router_counts_each_file_once(tmp_path: Path, with_toys: None) -> None:
    cfg = Config().with_overrides(
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state")}
    )
    with Router(cfg) as router:
        ok = router.route(write_toy(tmp_path / "a.toy", ["4", "5"]))
        bad = router.route(write_toy(tmp_path / "b.toy", ["fail"]))
        (tmp_path / "z.bin").write_bytes(b"\x00\x01 binary")
        unsupported = router.route(tmp_path / "z.bin")
        text = _exposition(router)
    assert ok.ok and ok.events == 2
    assert (bad.failure, unsupported.failure) == ("wrong_layout", "unsupported")
    assert _value(text, "wavedqm_files_processed_total") == 1
    assert _value(text, "wavedqm_events_processed_total") == 2
    assert _value(text, "wavedqm_files_failed_total", reason="wrong_layout") == 1
    assert _value(text, "wavedqm_files_failed_total", reason="unsupported") == 1
    assert _value(text, "wavedqm_processor_files_total", processor="toy", status="ok") == 1
    assert _value(text, "wavedqm_processor_files_total", processor="toy", status="failed") == 1


def _exposition(router: Router) -> str:
    from prometheus_client import generate_latest

    return generate_latest(router.registry).decode()


def test_toy_processor_through_the_watching_daemon(tmp_path: Path, with_toys: None) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    cfg = Config().with_overrides(
        watch={"paths": (str(spool),), "settle_seconds": 0.2},
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state")},
        metrics={"listen": f"127.0.0.1:{free_port()}"},
    )
    assert "*.toy" in watch_patterns(cfg)
    done: list[Path] = []
    app = DaemonApp(cfg, on_file_done=lambda path, result: done.append(path))
    app.start()
    try:
        tmp = spool / ".incoming"
        for name, values in (("one.toy", ["1"]), ("two.toy", ["2", "2"]), ("bad.toy", ["fail"])):
            write_toy(tmp, values).rename(spool / name)  # published like a DAQ
        (spool / "ignored.txt").write_text("no pattern matches this\n")

        def scraped() -> str | None:
            status, body = http_get(f"{app.url}/metrics")
            text = body.decode()
            processed = metric_value(text, "wavedqm_files_processed_total") or 0
            return text if status == 200 and processed >= 2 and len(done) >= 3 else None

        text = wait_for(scraped, 30, what="toy files processed")
    finally:
        app.stop()
    assert sorted(p.name for p in done) == ["bad.toy", "one.toy", "two.toy"]
    assert metric_value(text, "wavedqm_files_processed_total") == 2
    assert metric_value(text, "wavedqm_events_processed_total") == 3
    assert metric_value(text, "wavedqm_files_failed_total", reason="wrong_layout") == 1
    toy_ok = metric_value(text, "wavedqm_processor_files_total", processor="toy", status="ok")
    assert toy_ok == 2
    out = tmp_path / "out"
    assert json.loads((out / "two.toy" / "summary.json").read_text())["toy"] == {"total": 4}
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".toy") == ["one.toy", "two.toy"]
    assert (spool / "ignored.txt").read_text() == "no pattern matches this\n"


def test_inspect_knows_a_registered_format(tmp_path: Path, with_toys: None, capsys) -> None:
    assert main(["inspect", str(write_toy(tmp_path / "i.toy", ["1", "2"])), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"format": "toy-counts", "values": 2}


def test_disabled_processors_are_neither_imported_nor_built() -> None:
    code = (
        "import sys\n"
        "from wavedqm.config import Config\n"
        "from wavedqm.processors.router import Router\n"
        "cfg = Config().with_overrides(processors={'disabled': ('s2',)})\n"
        "r = Router(cfg)\n"
        "print(sorted(p.name for p in r.processors()))\n"
        "print('wavedqm.processors.s2' in sys.modules, 'wavedqm.kernels.s2' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert "'s2'" not in out[0] and "'light'" in out[0]
    assert out[1] == "False False"


def test_unknown_disabled_processor_is_a_config_error() -> None:
    from wavedqm.errors import ConfigError

    cfg = Config().with_overrides(processors={"disabled": ("lihgt",)})
    with pytest.raises(ConfigError, match="unknown processor 'lihgt'"):
        Router(cfg)
