"""Readings of the real test video that cannot be circular: metamorphic agreement and a person's labels.

    python bench/bench_realvideo.py [--variants mirror,half,...] [--extra] [--json out.json]

The video (``tests/data/pexels_woman_emotions.mp4``, 640x360, 24 fps, 19.7 s) shows a woman crying from
0 to about 9.5 s, with a hand over her mouth from about 3 to 9 s, then laughing with broad smiles from
about 10 s to the end. Nothing in mevqa was calibrated on it.

1. **Metamorphic suite** (Segura et al., "A survey on metamorphic testing", IEEE TSE 2016): transformations
   that must not change what a person reads on the face. Each variant is read (front end, spotter, AU
   detector per interval, emotion reading) and compared with the original's reading:
   - interval F1: intervals matched one-to-one at IoU >= 0.5 in seconds (greedy, best IoU first);
   - AU Jaccard: mean Jaccard index of the present-AU sets of matched intervals;
   - laterality (mirror only): of the one-sided AUs present in both readings of a matched interval,
     the fraction that changed side (they must all swap).
   Variants: ``mirror`` (left-right flip), ``half`` and ``double`` (0.5x and 2x resolution), ``fps12``
   (every other frame), ``jpeg10`` (every frame re-encoded as JPEG at quality 10), ``bright``
   (+40 grey levels, clipped), ``gamma`` (gamma 1.8, darker mid-tones), ``excerpt8`` (10-18 s alone;
   compared with the original's intervals inside that window, shifted).
2. **Clip independence**: peak and threshold of the spotter's curve at 10-11.3 s, in the full clip and in
   a 6 s excerpt (9-15 s), in inter-ocular distances (IOD).
3. **As a person labels it**: every interval with its apex in the laughing half (>= 10 s) should read
   positive with AU12; every interval in the crying half (< 9.5 s) negative; the hand over the mouth
   (about 3-9 s) should be reported as occlusion.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mevqa.io.video import Clip  # noqa: E402
from mevqa.motion.frontend import run_frontend  # noqa: E402
from mevqa.spot.spotter import spot  # noqa: E402
from mevqa.au.detector import detect_aus  # noqa: E402
from mevqa.face.occlusion import stretches  # noqa: E402
from mevqa.facs.emotions import emotion_candidates  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "pexels_woman_emotions.mp4"
LAUGH_FROM, CRY_UNTIL = 10.0, 9.5
EXCERPT8 = (10.0, 18.0)
EXCERPT6 = (9.0, 15.0)
PROBE = (10.0, 11.3)


# -- transformations -------------------------------------------------------------------------------
def _map(clip: Clip, fn, name: str, fps: float | None = None) -> Clip:
    return Clip(np.ascontiguousarray(np.stack([fn(f) for f in clip.frames])), fps or clip.fps, f"{name}:{clip.source}")


def _lut(fn) -> np.ndarray:
    return np.clip(np.round(fn(np.arange(256, dtype=float))), 0, 255).astype(np.uint8)


def excerpt(clip: Clip, start: float, stop: float) -> Clip:
    a, b = int(round(start * clip.fps)), int(round(stop * clip.fps))
    return Clip(clip.frames[a:b].copy(), clip.fps, f"excerpt{start:g}-{stop:g}:{clip.source}")


def _jpeg(f: np.ndarray, q: int = 10) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def frame_transforms(w: int, h: int) -> dict:
    """name -> what it does to one RGB frame of a w x h video (the frame-wise transformations; 12 fps and
    excerpts act on the frame sequence). bench_long.py writes long-video copies with the same functions."""
    bright, gamma = _lut(lambda v: v + 40), _lut(lambda v: 255 * (v / 255) ** 1.8)
    return {
        "mirror": lambda f: f[:, ::-1],
        "half": lambda f: cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        "double": lambda f: cv2.resize(f, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC),
        "jpeg10": _jpeg,
        "bright": lambda f: bright[f],
        "gamma": lambda f: gamma[f],
    }


def variants(clip: Clip) -> dict[str, tuple[Clip, float, bool]]:
    """name -> (clip, time offset of its frame 0 in the original, mirrored)."""
    fn = frame_transforms(*clip.size)
    out = {name: (_map(clip, fn[name], name), 0.0, name == "mirror") for name in ("mirror", "half", "double")}
    out["fps12"] = (Clip(clip.frames[::2].copy(), clip.fps / 2, f"fps12:{clip.source}"), 0.0, False)
    out |= {name: (_map(clip, fn[name], name), 0.0, False) for name in ("jpeg10", "bright", "gamma")}
    out["excerpt8"] = (excerpt(clip, *EXCERPT8), EXCERPT8[0], False)
    return out


def extra_variants(clip: Clip) -> dict[str, tuple[Clip, float, bool]]:
    """Transformations the issue does not list (``--extra``; reported apart, not in the means): a 6 degree
    roll, Gaussian sensor noise (sigma 8 grey levels), a blur (sigma 1.5 px), contrast 0.6, a 1.2x zoom
    on the centre, and a 10 s excerpt cut in the middle of the crying (4-14 s)."""
    w, h = clip.size
    roll = cv2.getRotationMatrix2D((w / 2, h / 2), 6, 1.0)
    rng = np.random.default_rng(0)
    dx, dy = round(w / 12), round(h / 12)
    return {
        "roll6": (_map(clip, lambda f: cv2.warpAffine(f, roll, (w, h), borderMode=cv2.BORDER_REFLECT), "roll6"), 0.0, False),
        "noise8": (_map(clip, lambda f: np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8), "noise8"),
                   0.0, False),
        "blur": (_map(clip, lambda f: cv2.GaussianBlur(f, (0, 0), 1.5), "blur"), 0.0, False),
        "contrast": (_map(clip, lambda f: np.clip(128 + 0.6 * (f.astype(np.float32) - 128), 0, 255).astype(np.uint8),
                          "contrast"), 0.0, False),
        "zoom": (_map(clip, lambda f: cv2.resize(f[dy:h - dy, dx:w - dx], (w, h), interpolation=cv2.INTER_CUBIC), "zoom"),
                 0.0, False),
        "excerpt4": (excerpt(clip, 4.0, 14.0), 4.0, False),
    }


# -- reading ---------------------------------------------------------------------------------------
def read(clip: Clip, *, offset: float = 0.0) -> dict:
    """What mevqa reads: intervals (seconds in the original's time line), AUs with sides, emotion."""
    front = run_frontend(clip)
    sr = spot(front)
    fps = clip.fps
    out = []
    for iv in sr.intervals:
        res = detect_aus(front, iv.onset, iv.apex)
        present = res.present_aus()
        cands = emotion_candidates([(a.code, a.side, a.score) for a in present])
        top = cands[0] if cands else None
        out.append({"on": offset + iv.onset / fps, "apex": offset + iv.apex / fps, "off": offset + (iv.offset + 1) / fps,
                    "aus": {a.code: a.side for a in present},
                    "fine": top.fine if top else None, "coarse": top.coarse if top else None,
                    "confidence": round(top.confidence, 3) if top else 0.0, "rule": top.rule if top else None})
    t = np.asarray(sr.times, float) + offset
    reading = {"intervals": out, "times": t, "combined": np.asarray(sr.combined, float),
               "threshold": np.asarray(sr.threshold, float), "iod": float(front.interocular_px),
               "occlusion": _occlusion(front, offset)}
    return reading


def _occlusion(front, offset: float = 0.0) -> list[str]:
    """Occluded stretches the front end reports (:attr:`FrontEnd.occlusion`), as "region a-b s"."""
    out = []
    for region, mask in (getattr(front, "occlusion", None) or {}).items():
        for a, b in stretches(mask, front.fps, bridge_seconds=0.5, min_seconds=0.3):
            out.append(f"{region} {offset + front.to_clip(a) / front.clip.fps:.1f}-"
                       f"{offset + front.to_clip(b) / front.clip.fps:.1f} s")
    return out


# -- agreement -------------------------------------------------------------------------------------
def _iou(a, b) -> float:
    inter = min(a["off"], b["off"]) - max(a["on"], b["on"])
    union = max(a["off"], b["off"]) - min(a["on"], b["on"])
    return max(inter, 0.0) / union if union > 0 else 0.0


def match(ref: list, got: list, *, min_iou: float = 0.5) -> list[tuple[dict, dict]]:
    pairs = sorted(((_iou(a, b), i, j) for i, a in enumerate(ref) for j, b in enumerate(got)), reverse=True)
    used_a, used_b, out = set(), set(), []
    for s, i, j in pairs:
        if s < min_iou:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((ref[i], got[j]))
    return out


_SWAP = {"left": "right", "right": "left", "both": "both"}


def agreement(ref: list, got: list, *, mirrored: bool = False) -> dict:
    pairs = match(ref, got)
    n = len(ref) + len(got)
    f1 = 2 * len(pairs) / n if n else 1.0
    jac, lateral, swapped = [], 0, 0
    for a, b in pairs:
        sa, sb = set(a["aus"]), set(b["aus"])
        jac.append(len(sa & sb) / len(sa | sb) if sa | sb else 1.0)
        if mirrored:
            for code in sa & sb:
                if a["aus"][code] in ("left", "right"):
                    lateral += 1
                    swapped += b["aus"][code] == _SWAP[a["aus"][code]]
    out = {"f1": round(f1, 3), "matched": len(pairs), "n_ref": len(ref), "n_var": len(got),
           "au_jaccard": round(float(np.mean(jac)), 3) if jac else None}
    if mirrored:
        out["lateral_swapped"] = f"{swapped}/{lateral}"
        out["laterality"] = round(swapped / lateral, 3) if lateral else None
    return out


def window(reading: dict, start: float, stop: float) -> list:
    """The reading's intervals that lie mostly inside [start, stop], cut to it."""
    out = []
    for iv in reading["intervals"]:
        a, b = max(iv["on"], start), min(iv["off"], stop)
        if b - a >= 0.5 * (iv["off"] - iv["on"]):
            out.append({**iv, "on": a, "off": b})
    return out


def probe(reading: dict, start: float, stop: float) -> tuple[float, float]:
    """Peak of the spotter's curve and the threshold there, within [start, stop] s, in IOD."""
    t = reading["times"]
    m = (t >= start) & (t <= stop)
    k = int(np.argmax(np.where(m, reading["combined"], -np.inf)))
    return reading["combined"][k] / reading["iod"], reading["threshold"][k] / reading["iod"]


def person_labels(reading: dict) -> dict:
    laugh = [iv for iv in reading["intervals"] if iv["apex"] >= LAUGH_FROM]
    cry = [iv for iv in reading["intervals"] if iv["apex"] < CRY_UNTIL]
    return {"laughing": f"{sum(iv['coarse'] == 'positive' and 'AU12' in iv['aus'] for iv in laugh)}/{len(laugh)} "
                        "positive with AU12",
            "crying": f"{sum(iv['coarse'] == 'negative' for iv in cry)}/{len(cry)} negative",
            "occlusion": reading["occlusion"] or "none reported",
            "hand_over_mouth_3_9s": any(o.startswith("mouth") and float(o.split()[1].split("-")[0]) < 6.0
                                        and float(o.split()[1].split("-")[1]) > 6.0 for o in reading["occlusion"])}


def _show(reading: dict) -> None:
    for iv in reading["intervals"]:
        aus = " ".join(f"{c}{'' if s == 'both' else s[0].upper()}" for c, s in iv["aus"].items())
        print(f"  {iv['on']:6.2f}-{iv['off']:6.2f} s apex {iv['apex']:6.2f}  {iv['fine'] or '-':>10} "
              f"({iv['coarse'] or '-'}, {iv['confidence']:.2f}, {iv['rule'] or '-'})  {aus}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=str(REAL))
    ap.add_argument("--variants", default="all", help="comma-separated subset of the variants, or 'all'")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--extra", action="store_true",
                    help="also the transformations the issue does not list (roll, noise, blur, contrast, zoom, "
                         "another excerpt), reported apart")
    args = ap.parse_args(argv)
    clip = Clip.load(args.video)
    t0 = time.perf_counter()
    base = read(clip)
    print(f"original: {len(base['intervals'])} intervals ({time.perf_counter() - t0:.1f} s)")
    _show(base)
    figures: dict = {"person": person_labels(base)}
    print("as a person labels it:", json.dumps(figures["person"]))

    ex = read(excerpt(clip, *EXCERPT6), offset=EXCERPT6[0])
    (pf, tf), (pe, te) = probe(base, *PROBE), probe(ex, *PROBE)
    figures["clip_independence"] = {"full": {"peak_iod": round(pf, 4), "threshold_iod": round(tf, 4)},
                                    "excerpt6": {"peak_iod": round(pe, 4), "threshold_iod": round(te, 4)}}
    print(f"frames {PROBE[0]}-{PROBE[1]} s: full clip peak {pf:.4f} IOD, threshold {tf:.4f}; "
          f"6 s excerpt {EXCERPT6[0]}-{EXCERPT6[1]} s peak {pe:.4f}, threshold {te:.4f} "
          f"(ratio {pe / max(pf, 1e-9):.2f}, {te / max(tf, 1e-9):.2f})")

    chosen = variants(clip)
    if args.variants != "all":
        chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}
    meta = {}
    for name, (vclip, off, mirrored) in chosen.items():
        t0 = time.perf_counter()
        r = read(vclip, offset=off)
        ref = base["intervals"]
        if name.startswith("excerpt"):
            ref = window(base, off, off + vclip.duration)
        ag = agreement(ref, r["intervals"], mirrored=mirrored)
        meta[name] = ag
        print(f"{name:>9}: interval F1 {ag['f1']:.3f} ({ag['matched']} matched of {ag['n_ref']} / {ag['n_var']}), "
              f"AU Jaccard {ag['au_jaccard']}" + (f", lateral AUs swapped {ag['lateral_swapped']}" if mirrored else "")
              + f"  [{time.perf_counter() - t0:.0f} s]")
        if name.startswith("excerpt") or mirrored:
            _show(r)
    if meta:
        f1 = float(np.mean([m["f1"] for m in meta.values()]))
        jac = [m["au_jaccard"] for m in meta.values() if m["au_jaccard"] is not None]
        figures["metamorphic"] = meta
        figures["metamorphic_mean"] = {"f1": round(f1, 3), "au_jaccard": round(float(np.mean(jac)), 3) if jac else None}
        print(f"metamorphic mean: interval F1 {f1:.3f} (target >= 0.85), AU Jaccard "
              f"{figures['metamorphic_mean']['au_jaccard']} (target >= 0.75)")
    if args.extra:
        extra = {}
        for name, (vclip, off, mirrored) in extra_variants(clip).items():
            r = read(vclip, offset=off)
            ref = window(base, off, off + vclip.duration) if name.startswith("excerpt") else base["intervals"]
            extra[name] = ag = {**agreement(ref, r["intervals"], mirrored=mirrored), "person": person_labels(r)}
            print(f"{name:>9}: interval F1 {ag['f1']:.3f} ({ag['matched']} matched of {ag['n_ref']} / {ag['n_var']}), "
                  f"AU Jaccard {ag['au_jaccard']}; laughing {ag['person']['laughing']}, crying {ag['person']['crying']}")
        figures["extra"] = extra
        print(f"extra transformations (not in the targets): interval F1 "
              f"{np.mean([m['f1'] for m in extra.values()]):.3f}, AU Jaccard "
              f"{np.mean([m['au_jaccard'] for m in extra.values() if m['au_jaccard'] is not None]):.3f} on average")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return figures


if __name__ == "__main__":
    main()
