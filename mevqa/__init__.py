"""mevqa: ask questions about facial micro-expressions in video.

Data flow (see ARCHITECTURE.md): Clip -> face track -> aligned crops -> optical flow ->
spotter (intervals) + AU detector (per interval) -> Evidence -> prompt -> backend -> answer.
"""
__version__ = "0.1.0"
