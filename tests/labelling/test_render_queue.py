"""The clip renderer's queue: a clip a page waits for goes before clips rendered in advance, at most
a few of those wait, each clip is rendered once."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from prefrl.labelling import render
from prefrl.labelling.render import MAX_QUEUED_AHEAD, ClipRenderer


def test_the_clip_a_page_waits_for_goes_first_and_advance_work_is_bounded(tmp_path, monkeypatch):
    started, gate = [], threading.Event()

    def fake_render(env_id, states, path):
        started.append(int(path.stem))
        if len(started) == 1:
            gate.wait(5)  # the one worker is busy while the rest queue up
        path.write_bytes(b"mp4")
        return path

    monkeypatch.setattr(render, "render_clip", fake_render)
    renderer = ClipRenderer("Pendulum-v1", tmp_path, workers=1, executor=ThreadPoolExecutor(1))
    states = np.zeros((3, 2))
    ahead = [renderer.request(i, states, urgent=False) for i in range(1, 1 + MAX_QUEUED_AHEAD + 3)]
    assert sum(f.cancelled() for f in ahead) == 2  # 1 running + MAX_QUEUED_AHEAD waiting; the rest dropped
    waited_for = renderer.request(100, states)
    again = renderer.request(5, states)  # a page now waits for one queued in advance
    gate.set()
    assert waited_for.result(5).name == "100.mp4" and again.result(5).name == "5.mp4"
    time.sleep(0.2)
    assert started[:3] == [1, 100, 5]  # the waited-for clips overtake the advance queue
    assert renderer.request(100, states).result(1) == tmp_path / "100.mp4"  # cached: not rendered again
    assert started.count(100) == 1
    renderer.close()
