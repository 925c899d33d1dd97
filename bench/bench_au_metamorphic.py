"""The AU detector and the emotion reading under transformations that must not change them, at fixed intervals.

    python bench/bench_au_metamorphic.py [--variants mirror,half,...] [--moments spotted,fixed] [--cache DIR]

:mod:`bench.bench_realvideo` reads each transformed copy of the real video with its own spotter, so its AU
figures mix two things: where the intervals are cut and what the AU detector reads in them. This bench holds
the intervals still to measure the AU detector and the emotion rules alone. It reads the same moments in the
original and in every variant of ``bench_realvideo.variants`` (mirror, half, double, fps12, jpeg10, bright,
gamma, excerpt8), mapped onto each variant's time line (the excerpt's offset subtracted; a mirror keeps the
times), with onset and apex at the same instants:

- ``spotted``: the original's spotted intervals (onset -> apex), whatever the spotter cuts today;
- ``fixed``: moments picked by a person watching the video (:data:`MOMENTS`): the crying face early in the
  clip, and three stretches of broad laughter.

Per variant it prints the mean Jaccard index of the present-AU sets against the original's, the laterality
swaps under the mirror (of the one-sided AUs present in both readings, how many changed side; the strict
count also charges a one-sided AU that became "both" or vanished), how many coarse and fine readings agree
with the original's, and the reading of every moment. Last, as a person labels it: the fixed crying moment
should read negative, the laughing ones positive with AU12, in every variant.

``--cache DIR`` keeps each variant's front end (face track and aligned crops, the clip's frames dropped)
so a rerun after a change to the AU detector or the emotion rules takes seconds; delete it after a change
to the front end.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_realvideo import CRY_UNTIL, LAUGH_FROM, REAL, _SWAP, variants  # noqa: E402
from mevqa.au.detector import detect_aus  # noqa: E402
from mevqa.facs.emotions import emotion_candidates  # noqa: E402
from mevqa.io.video import Clip  # noqa: E402
from mevqa.motion.frontend import run_frontend  # noqa: E402
from mevqa.spot.spotter import spot  # noqa: E402

#: (onset s, apex s, what a person sees there) on the real video, picked by watching it (not by reading
#: mevqa's output): the crying face before the hand reaches the mouth (about 2.4 s), then three stretches of
#: laughter.
MOMENTS: tuple[tuple[float, float, str], ...] = (
    (0.5, 2.2, "crying"), (10.5, 12.0, "laughing"), (12.5, 14.0, "laughing"), (16.0, 18.0, "laughing"))


def _slim(front):
    """The front end without the clip's frames (the AU detector reads the aligned crops, the track and the
    blendshapes; it needs the clip only for its length, frame rate and name)."""
    c = front.clip
    front.clip = Clip(np.zeros((c.n_frames, 1, 1, 3), np.uint8), c.fps, c.source)
    return front


def frontend(name: str, clip: Clip, cache: Path | None):
    path = cache / f"{name}.pkl" if cache else None
    if path and path.exists():
        return pickle.loads(path.read_bytes())
    front = run_frontend(clip)
    _ = front.occlusion  # computed once, kept in the cache
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(_slim(front)))
    return front


def read_at(front, moments: list[tuple[float, float, str]], *, offset: float = 0.0) -> list[dict]:
    """AUs and the top emotion at each (onset s, apex s) moment of the original's time line."""
    fps, n = front.clip.fps, front.clip.n_frames
    out = []
    for on, apex, label in moments:
        a = int(np.clip(round((on - offset) * fps), 0, n - 1))
        b = int(np.clip(round((apex - offset) * fps), a, n - 1))
        res = detect_aus(front, a, b)
        present = res.present_aus()
        cands = emotion_candidates([(x.code, x.side, x.score) for x in present])
        top = cands[0] if cands else None
        out.append({"on": on, "apex": apex, "label": label, "aus": {x.code: x.side for x in present},
                    "fine": top.fine if top else None, "coarse": top.coarse if top else None,
                    "confidence": round(top.confidence, 3) if top else 0.0, "rule": top.rule if top else None})
    return out


def compare(ref: list[dict], got: list[dict], *, mirrored: bool) -> dict:
    """AU Jaccard, laterality swaps and reading agreement of two readings of the same moments."""
    jac, lateral, swapped, strict_n = [], 0, 0, 0
    for a, b in zip(ref, got):
        sa, sb = set(a["aus"]), set(b["aus"])
        jac.append(len(sa & sb) / len(sa | sb) if sa | sb else 1.0)
        if mirrored:
            for code, side in a["aus"].items():
                if side not in ("left", "right"):
                    continue
                strict_n += 1
                if code in sb:
                    lateral += 1
                    swapped += b["aus"][code] == _SWAP[side]
            strict_n += sum(side in ("left", "right") and a["aus"].get(code) == "both" for code, side in b["aus"].items())
    out = {"au_jaccard": round(float(np.mean(jac)), 3) if jac else None, "n": len(jac),
           "coarse_agree": sum(a["coarse"] == b["coarse"] for a, b in zip(ref, got)),
           "fine_agree": sum(a["fine"] == b["fine"] for a, b in zip(ref, got))}
    if mirrored:
        out["lateral_swapped"] = f"{swapped}/{lateral}"
        out["lateral_swapped_strict"] = f"{swapped}/{strict_n}"
    return out


def person(reading: list[dict], tally: dict | None = None) -> tuple[int, int]:
    """(agreeing, labelled): crying moments negative, laughing ones positive with AU12. ``tally`` gathers
    [agreeing, labelled] per label (the hand-picked moments apart, as "fixed crying" / "fixed laughing")."""
    ok = n = 0
    for iv in reading:
        label = iv["label"] or ("laughing" if iv["apex"] >= LAUGH_FROM else "crying" if iv["apex"] < CRY_UNTIL else "")
        if label not in ("crying", "laughing"):
            continue
        good = iv["coarse"] == "negative" if label == "crying" else (iv["coarse"] == "positive" and "AU12" in iv["aus"])
        n, ok = n + 1, ok + good
        if tally is not None:
            key = ("fixed " if iv["label"] else "spotted ") + label
            tally.setdefault(key, [0, 0])
            tally[key][0] += good
            tally[key][1] += 1
    return ok, n


def _row(iv: dict) -> str:
    aus = " ".join(f"{c}{'' if s == 'both' else s[0].upper()}" for c, s in iv["aus"].items())
    return (f"    {iv['on']:6.2f}->{iv['apex']:6.2f} s {iv['label'] or '':>8}  {iv['fine'] or '-':>10} "
            f"({iv['coarse'] or '-'}, {iv['confidence']:.2f}, {iv['rule'] or '-'})  {aus}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=str(REAL))
    ap.add_argument("--variants", default="all", help="comma-separated subset of the variants, or 'all'")
    ap.add_argument("--moments", default="spotted,fixed", help="spotted, fixed, or both (comma-separated)")
    ap.add_argument("--cache", help="folder to keep the front ends in (see the module notes)")
    ap.add_argument("--moments-file", help="JSON list of [onset s, apex s, label]: read it when it exists (the "
                    "spotter's intervals of an earlier run, to compare two versions of the AU detector at the same "
                    "moments while the spotter changes), else write the moments used there")
    ap.add_argument("--quiet", action="store_true", help="do not print every variant's readings")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    clip = Clip.load(args.video)
    kinds = args.moments.split(",")
    t0 = time.perf_counter()
    base_front = frontend("original", clip, cache)
    moments: list[tuple[float, float, str]] = []
    saved = Path(args.moments_file) if args.moments_file else None
    if saved and saved.exists():
        moments = [(float(a), float(b), str(c)) for a, b, c in json.loads(saved.read_text())]
    elif "spotted" in kinds:
        fps = base_front.clip.fps
        moments += [(iv.onset / fps, iv.apex / fps, "") for iv in spot(base_front).intervals]
    if "fixed" in kinds and not (saved and saved.exists()):
        moments += list(MOMENTS)
    if saved and not saved.exists():
        saved.write_text(json.dumps(moments))
    base = read_at(base_front, moments)
    tally: dict = {}
    ok, n = person(base, tally)
    print(f"original: {len(moments)} moments, as a person labels it {ok}/{n} ({time.perf_counter() - t0:.0f} s)")
    for iv in base:
        print(_row(iv))
    chosen = variants(clip) if args.variants == "all" else {
        k: v for k, v in variants(clip).items() if k in args.variants.split(",")}
    figures: dict = {"original": {"person": f"{ok}/{n}"}, "variants": {}}
    person_all = [ok, n]
    for name, (vclip, off, mirrored) in chosen.items():
        t0 = time.perf_counter()
        end = off + vclip.duration
        keep = [k for k, (on, apex, _) in enumerate(moments) if on >= off and apex < end]
        got = read_at(frontend(name, vclip, cache), [moments[k] for k in keep], offset=off)
        cmp = compare([base[k] for k in keep], got, mirrored=mirrored)
        ok, n = person(got, tally)
        person_all[0] += ok
        person_all[1] += n
        cmp["person"] = f"{ok}/{n}"
        figures["variants"][name] = cmp
        print(f"{name:>9}: AU Jaccard {cmp['au_jaccard']} over {cmp['n']}, coarse agree {cmp['coarse_agree']}/{cmp['n']}, "
              f"fine agree {cmp['fine_agree']}/{cmp['n']}, person {cmp['person']}"
              + (f", lateral AUs swapped {cmp['lateral_swapped']} (strict {cmp['lateral_swapped_strict']})"
                 if mirrored else "") + f"  [{time.perf_counter() - t0:.0f} s]")
        if not args.quiet:
            for iv in got:
                print(_row(iv))
    jac = [v["au_jaccard"] for v in figures["variants"].values() if v["au_jaccard"] is not None]
    if jac:
        figures["mean_au_jaccard"] = round(float(np.mean(jac)), 3)
        figures["person_all"] = f"{person_all[0]}/{person_all[1]}"
        figures["person_by_label"] = {k: f"{a}/{b}" for k, (a, b) in sorted(tally.items())}
        print(f"mean AU Jaccard {figures['mean_au_jaccard']} (target >= 0.75); as a person labels it, all readings "
              f"{figures['person_all']}: " + ", ".join(f"{k} {v}" for k, v in figures["person_by_label"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
