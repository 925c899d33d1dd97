"""Synthetic micro-expression clips with exact ground truth, made by warping one real face photo.

A package by what its parts do: :mod:`.specs` (AU displacement specs, limits, event and config
dataclasses), :mod:`.face` (the neutral frame and its geometry), :mod:`.fields` (AU fields and
events' apex fields), :mod:`.warp` (field inversion, eyelids, the per-frame renderer), :mod:`.timeline`
(profiles, drawing events, blinks and drift), :mod:`.clips` (:func:`make_clip`), :mod:`.sets` (sets on
disk, ``mevqa synth``) and :mod:`.demo` (the built-in demo's script and its shipped asset).

These clips are the project's own test, demo and benchmark data: the spotter and the AU detector are
scored on them, so what the ground truth says is exactly what the pixels do.

How a clip is made
------------------
1. **Face setup** (:func:`face_setup`, cached per photo and frame size). FaceMesh landmarks are found on
   the photo once; the photo is scaled so that the inter-ocular distance is about 0.21 of the frame
   height (100 px at 640x480, the face size of CASME II, Yan et al., PLoS ONE 2014) and the face is
   centred. An upscaled photo is smooth where a camera would show skin texture, and optical flow needs
   texture, so a faint static grain (fixed seed) is added to the neutral frame; it moves with the skin.
2. **AU displacement fields** (:data:`AU_SPECS`). Each action unit is a sum of anisotropic Gaussian
   bumps anchored on FaceMesh landmark groups, oriented on the face's own axes and sized by the
   inter-ocular distance ``L``; directions follow the FACS manual's appearance changes (Ekman, Friesen
   & Hager, *Facial Action Coding System*, 2002): AU1 raises the inner brow, AU4 lowers the brows and
   draws them together, AU12 pulls the lip corners up and out, ... Bump fields never move the eye
   opening (a soft mask protects it): eyelids slide *over* the eye, which a smooth warp cannot do, so
   the lids (AU5, AU6's lower-lid bulge, AU7, blinks) are a separate occlusion model, see 3.
   Every side is the subject's own: ``"left"`` is the image right.
3. **Eyelids.** In the face frame (u along the eye line, v downward) each lid margin is a curve through
   FaceMesh's lid landmarks. Closing the upper lid by ``s`` moves its margin to ``v_u + s``: the lid skin
   between ``v_u - h`` and the margin is stretched down over the eyeball, which stays put and is
   covered (the iris is not squashed); the lower lid works the same way from below; the lash band
   moves rigidly so lashes stay thin. The map is piecewise linear in v with a 1.5 px band at the
   occluding margin (a cheap coverage blend), so a margin moves smoothly at sub-pixel steps. Blinks
   close the upper lid of both eyes onto the lower lid and back in 0.1-0.3 s, closing faster than
   reopening (Caffier, Erdmann & Ullsperger, "Experimental evaluation of eye-blink parameters as a
   drowsiness measure", Eur J Appl Physiol 2003).
4. **Warping.** Bump fields are *forward* displacements ``d`` (where skin goes). ``cv2.remap`` needs the
   backward map ``B`` with ``B(x) = -d(x + B(x))``, solved per frame by Newton's method from ``B = -d``
   (the fixed-point form of Chen et al., "A simple fixed-point approach to invert a deformation
   field", Med. Phys. 2008, crawls where skin stretches a lot); max residual <= 0.15 px for every AU at
   10 px except AU4 (~0.5 px in a few pixels of the crushed lid fold). A field that would crush
   skin past 65% is widened (blurred, peak restored) first, so the warp does not fold (lowest area
   ratio at 10 px: 0.21, AU4's lid fold). The lid model is already backward. Head drift, a whole-frame similarity ``A_t``, is folded into the same map,
   ``map(x) = y + B(y)`` with ``y = A_t^-1 x``, so each frame costs one image remap.
5. **Time.** Each event follows a raised-cosine rise from onset to apex and fall to offset, exactly zero
   outside ``[onset, offset]`` (and at onset and offset themselves). Micro events last at most 0.5 s
   (``(offset - onset + 1) / fps``, so MEGC's onset-to-offset rule holds however it is counted) with
   1-4 px apex amplitude; macro events 0.6-4 s with 4-10 px (ranges for the default 100 px
   inter-ocular distance, scaled with the face size: :func:`amplitude_range`). Sensor noise
   (Gaussian luminance noise per pixel) and brightness flicker (a per-frame gain) come last.

Amplitude means the largest forward displacement on the face at the apex, in pixels of the output
frame, lids included: with several AUs in one event the composite field is scaled so its peak is the
amplitude, and each AU's own peak is reported too. Frame indices are 0-based and inclusive.
"""
from mevqa.testing.synth.clips import make_clip
from mevqa.testing.synth.demo import demo_clip, demo_config, demo_events, render_demo, write_demo
from mevqa.testing.synth.face import FaceSetup, face_setup
from mevqa.testing.synth.fields import EventField, au_unit_field, event_field
from mevqa.testing.synth.sets import main_synth, write_synth_set
from mevqa.testing.synth.specs import (AU_SPECS, DEFAULT_PHOTO, EMOTION_AUS, SINGLE_AUS, SynthConfig, SynthError,
                                      SynthEvent)
from mevqa.testing.synth.timeline import amplitude_range, temporal_profile

__all__ = [
    "AU_SPECS", "EMOTION_AUS", "SINGLE_AUS", "DEFAULT_PHOTO", "SynthError", "SynthEvent", "SynthConfig", "FaceSetup",
    "EventField", "face_setup", "au_unit_field", "event_field", "temporal_profile", "make_clip",
    "write_synth_set", "demo_clip", "demo_config", "demo_events", "render_demo", "write_demo", "main_synth",
    "amplitude_range",
]
