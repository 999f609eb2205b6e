"""The rasteriser: geometry against a hand computation, and living beside torch's triton."""
import subprocess
import sys

import numpy as np
import trimesh

from occ_core.geometry import Camera
from occ_core.render import MeshLayer, shared_renderer


def test_sphere_silhouette_and_depth():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.05)
    cam = Camera.look_at([0, 0, -0.4], [0, 0, 0], [0, -1, 0], 128)
    frame = shared_renderer().render([MeshLayer.from_trimesh(mesh, np.ones((len(mesh.vertices), 3)), 7)], cam)
    # a sphere of radius r at distance d projects to a disc of radius f·r/sqrt(d² − r²)
    f, r, d = cam.K[0, 0], 0.05, 0.4
    disc = np.pi * (f * r / np.sqrt(d * d - r * r)) ** 2
    assert abs(frame.alpha.sum() / disc - 1) < 0.02
    assert set(np.unique(frame.ids)) == {0, 7}
    assert np.isclose(frame.depth[64, 64], d - r, atol=0.002)  # nearest point on the optical axis
    assert frame.depth[0, 0] == 0.0


def test_rendering_then_importing_triton_does_not_crash():
    """Mesa's LLVM loaded before triton's crashed the process (torchvision.ops imports triton)."""
    code = ("from occ_core.render import shared_renderer; shared_renderer(); "
            "import torchvision.ops; print('alive')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "alive" in r.stdout


def test_renders_from_other_threads():
    """Gradio runs callbacks in worker threads; a GL context is current in one thread only."""
    from concurrent.futures import ThreadPoolExecutor
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.05)
    cam = Camera.look_at([0, 0, -0.4], [0, 0, 0], [0, -1, 0], 64)
    layer = MeshLayer.from_trimesh(mesh, np.ones((len(mesh.vertices), 3)), 1)
    here = shared_renderer().render([layer], cam).alpha.sum()
    with ThreadPoolExecutor(4) as pool:
        sums = list(pool.map(lambda _: shared_renderer().render([layer], cam).alpha.sum(), range(8)))
    assert here > 100 and all(s == here for s in sums)
