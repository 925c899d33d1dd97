"""`mevqa cache` and the app's privacy stance: uploads are analysed in memory, never written to disk."""
from __future__ import annotations

from mevqa.apps.cli import main
from mevqa.apps.uploads import evidence_stream
from mevqa.evidence import cache
from mevqa.io.demo import demo_clip


def test_command_line_persists_privately_and_cache_clear_empties_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEVQA_CACHE", str(tmp_path))
    cache.clear()
    assert main(["evidence", "demo"]) in (0, None)
    files = list(cache.cache_dir().glob("*.json"))
    assert len(files) == 1 and (files[0].stat().st_mode & 0o777) == 0o600
    capsys.readouterr()
    assert main(["cache", "info"]) in (0, None)
    assert "1 entr" in capsys.readouterr().out
    assert main(["cache", "clear"]) in (0, None)
    assert "removed 1" in capsys.readouterr().out
    assert not list(cache.cache_dir().glob("*.json"))


def test_app_uploads_stay_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("MEVQA_CACHE", str(tmp_path))
    cache.clear()  # memory too: the analysis below really runs
    *_, ev = list(evidence_stream(demo_clip()))  # the app's path
    assert ev.intervals
    assert not list(cache.cache_dir().glob("*.json")), "an upload's evidence reached the disk"
