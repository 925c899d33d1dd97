"""Issue 18 item 7: a training run's files survive a kill and a full disk.

Each file a run depends on is built under a temporary name and renamed into place (a rerun after a
kill rebuilds it instead of failing on a half-written folder); failed frame writes raise; a full disk
at a checkpoint or while writing a zip-based file (the xlsx coding sheet) is one line, with no
``ZipFile.__del__`` traceback after it.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mevqa.train.atomic import WriteError, atomic_dir, writing
from mevqa.train.config import load_config
from mevqa.train.data import SYNTHETIC_DONE, resolve_model, sheets
from mevqa.vlm.config import TINY_MARKER


def test_a_half_written_tiny_model_is_rebuilt(tmp_path):
    """Before: a folder holding config.json counted as built, and every rerun failed to load it (rc 2)."""
    cfg = load_config(None, ["model=tiny", f"run_dir={tmp_path}"])
    folder = tmp_path / "tiny-model-qwen2_5_vl"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # killed right after the first file
    stale = tmp_path / ".tiny-model-qwen2_5_vl.tmp-99999"
    stale.mkdir()
    assert resolve_model(cfg, tmp_path) == str(folder)
    assert (folder / TINY_MARKER).is_file() and (folder / "model.safetensors").is_file()
    assert not stale.exists() and not list(tmp_path.glob(".tiny-model*"))


def test_a_killed_build_leaves_no_folder(tmp_path):
    final = tmp_path / "thing"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final, "the thing") as tmp:
            (tmp / "part").write_text("half")
            raise KeyboardInterrupt  # Ctrl-C mid-write
    assert not final.exists() and list(tmp_path.iterdir()) == []


def test_a_half_written_synthetic_set_is_rebuilt(tmp_path):
    cfg = load_config(None, ["model=tiny", f"run_dir={tmp_path}", "data.synthetic=true", "data.synthetic_subjects=2",
                             "data.synthetic_clips=1"])
    root = tmp_path / "synthetic-casme2"
    root.mkdir()
    (root / "CASME2-coding-20140508.xlsx").write_bytes(b"PK\x03\x04 torn")  # the sheet, and nothing else
    [(sheet, frames_root)] = sheets(cfg, tmp_path)
    assert frames_root == root and (root / SYNTHETIC_DONE).is_file() and sheet.stat().st_size > 1000
    assert len(list((root / "CASME2_RAW_selected").glob("sub*/*/img*.jpg"))) > 100


def test_a_frame_that_cannot_be_written_raises(tmp_path):
    from mevqa.io.video import write_clip

    frames = np.zeros((2, 16, 16, 3), np.uint8)
    (tmp_path / "clip" / "img1.jpg").mkdir(parents=True)  # cv2.imwrite returns False here (before: ignored)
    with pytest.raises(OSError, match="cannot write the frame"):
        write_clip(frames, tmp_path / "clip", fps=30.0, pattern="img{n}.jpg", start=0)


def test_a_full_disk_at_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    from accelerate import Accelerator

    from mevqa.train.checkpoint import latest_checkpoint, save_checkpoint

    acc = Accelerator(cpu=True)

    def full_disk(output_dir):  # what torch.save's zip writer raises when the disk fills
        (Path(output_dir) / "optimizer.bin").write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4288 vs 4176")

    monkeypatch.setattr(acc, "save_state", full_disk)
    with pytest.raises(WriteError) as err:
        save_checkpoint(acc, tmp_path, 3, {"step": 3}, keep=2)
    message = str(err.value)
    assert "\n" not in message and "enforce fail" not in message
    assert message.startswith("cannot write checkpoint step 3 to ") and "full disk" in message
    assert latest_checkpoint(tmp_path) is None and list((tmp_path / "checkpoints").iterdir()) == []


def test_a_full_disk_under_a_zip_writer_gives_one_line_and_no_traceback(tmp_path):
    """openpyxl's ZipFile, left open in the failing frames, retried its write at exit: 'Exception
    ignored in: <function ZipFile.__del__>' and a traceback followed the one-line error."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        import openpyxl
        from mevqa.train.atomic import writing
        wb = openpyxl.Workbook()
        for i in range(400):
            wb.active.append([f"row {{i}}", i, "x" * 30])
        try:
            with writing("the coding sheet", {str(tmp_path / 'sheet.xlsx')!r}):
                wb.save({str(tmp_path / 'sheet.xlsx')!r})
        except OSError as e:
            print("mevqa train: error:", e, file=sys.stderr)
            sys.exit(2)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mevqa train: error: cannot write the coding sheet to {tmp_path / 'sheet.xlsx'}: no space left on the "
        "device (or the file size limit was reached)"]


def test_writing_leaves_other_errors_alone():
    with pytest.raises(RuntimeError, match="not an I/O"):
        with writing("x", "y"):
            raise RuntimeError("not an I/O failure")
