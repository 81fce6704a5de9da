"""Joining a live stream at a keyframe.

A live input usually starts mid-GOP (the sender was already running, or a pipe was cut). The
frames before the first keyframe cannot be decoded: :class:`KeyframeGate` holds the video (and the
audio with it) back until the first keyframe, counts the video packets it skipped and says so
once while it waits and once when it joins.
"""

from __future__ import annotations

import logging

import av

__all__ = ["KeyframeGate"]

log = logging.getLogger(__name__)


class KeyframeGate:
    """One connection's join: ``admit(packet)`` is False until the first video keyframe."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.joined = False
        self.skipped = 0  # video packets dropped before the first keyframe

    def admit(self, packet: av.Packet, video: bool) -> bool:
        """Whether ``packet`` may go on (to the decoder, or out for audio)."""
        if self.joined:
            return True
        if not video:
            return self.skipped == 0  # audio before any video passes; audio while waiting does not
        if not packet.size:  # the end of the input before any keyframe
            return False
        if not packet.is_keyframe:
            if not self.skipped:
                log.info("%s starts mid-GOP: waiting for a keyframe", self.where)
            self.skipped += 1
            return False
        self.joined = True
        if self.skipped:
            log.info("joined %s at its first keyframe (%d video packets skipped)", self.where, self.skipped)
        return True
