"""Rasterise coloured triangle meshes from a pinhole camera: RGB, per-pixel mesh id and depth.

moderngl over a headless EGL context (Mesa llvmpipe on a CPU, the GPU's driver where there is one);
no window, no pytorch3d. One context per process, made on first use, so worker processes of the
scene generator each make their own after fork.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from occ_core.errors import OccError
from occ_core.geometry import Camera

_VERTEX = """
#version 330
uniform mat3 R;
uniform vec3 t;
uniform vec4 intr;      // fx, fy, cx, cy
uniform vec2 size;      // width, height in pixels
uniform vec2 clip;      // near, far
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_color;
out vec3 v_normal;
out vec3 v_color;
out float v_depth;
void main() {
    vec3 pc = R * in_pos + t;                       // OpenCV camera frame: x right, y down, z forward
    float u = intr.x * pc.x / pc.z + intr.z;
    float v = intr.y * pc.y / pc.z + intr.w;
    float a = (clip.y + clip.x) / (clip.y - clip.x);
    float b = -2.0 * clip.y * clip.x / (clip.y - clip.x);
    // pixel → NDC with image row 0 at the top; w = z keeps interpolation perspective-correct
    gl_Position = vec4((2.0 * u / size.x - 1.0) * pc.z, (1.0 - 2.0 * v / size.y) * pc.z, a * pc.z + b, pc.z);
    v_normal = R * in_normal;
    v_color = in_color;
    v_depth = pc.z;
}
"""

_FRAGMENT = """
#version 330
uniform vec3 light;     // direction towards the light, camera frame
uniform float ambient;
uniform float mesh_id;
in vec3 v_normal;
in vec3 v_color;
in float v_depth;
layout(location = 0) out vec4 f_color;
layout(location = 1) out vec2 f_aux;
void main() {
    vec3 n = normalize(v_normal);
    if (dot(n, vec3(0.0, 0.0, -1.0)) < 0.0) n = -n;  // two-sided: a bowl's inside is lit too
    float diffuse = max(dot(n, light), 0.0);
    vec3 h = normalize(light + vec3(0.0, 0.0, -1.0));
    float spec = pow(max(dot(n, h), 0.0), 32.0) * 0.15;
    f_color = vec4(v_color * (ambient + (1.0 - ambient) * diffuse) + spec, 1.0);
    f_aux = vec2(mesh_id, v_depth);
}
"""


def _load_triton_first() -> None:
    """Import triton (shipped with torch's CUDA builds) before Mesa loads its LLVM: the other order
    crashes the process with a segmentation fault when torch later imports triton (e.g. through
    torchvision.ops, which open_clip imports)."""
    import importlib.util
    if importlib.util.find_spec("triton") is not None:
        try:
            import triton  # noqa: F401
        except Exception:  # a broken triton only matters to code that uses it
            pass


class RendererUnavailable(OccError):
    """No headless OpenGL (EGL) context could be made."""


@dataclass
class MeshLayer:
    """A mesh to draw: vertices (N, 3) and normals in world coordinates, faces (F, 3), colours (N, 3)
    in [0, 1], and the id written to the id buffer (1–255; 0 is the background)."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    mesh_id: int

    @classmethod
    def from_trimesh(cls, mesh, colors: np.ndarray, mesh_id: int) -> "MeshLayer":
        return cls(np.asarray(mesh.vertices), np.asarray(mesh.faces), np.asarray(colors),
                   np.asarray(mesh.vertex_normals), mesh_id)


@dataclass
class Frame:
    """What one render returns: colour over transparent (rgb, alpha coverage), ids and depth."""

    rgb: np.ndarray    # (H, W, 3) float32 in [0, 1], premultiplied by alpha
    alpha: np.ndarray  # (H, W) float32 coverage in [0, 1]
    ids: np.ndarray    # (H, W) uint8, the mesh id covering most of the pixel (0: none)
    depth: np.ndarray  # (H, W) float32 camera-frame z in metres (0: none)

    def over(self, background: np.ndarray) -> np.ndarray:
        """Composite onto an (H, W, 3) float background → uint8 RGB."""
        out = self.rgb + background * (1.0 - self.alpha[..., None])
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


class Renderer:
    """A reusable offscreen rasteriser; ``render`` may be called from any thread."""

    def __init__(self, supersample: int = 2):
        # A GL context is current in one thread only, and the app's callbacks run in a pool of
        # threads: every GL call goes through this one-thread executor, which also serialises them.
        self._gl = ThreadPoolExecutor(max_workers=1, thread_name_prefix="occ-gl")
        self.supersample = supersample
        self._fbos: dict = {}
        self._gl.submit(self._make_context).result()

    def _make_context(self) -> None:
        _load_triton_first()
        try:
            import moderngl
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # the message names the system packages that provide EGL
            raise RendererUnavailable(
                f"could not create a headless OpenGL context ({exc}); install the EGL/Mesa libraries "
                "(Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1)") from exc
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.prog = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)

    def _framebuffer(self, w: int, h: int):
        if (w, h) not in self._fbos:
            color = self.ctx.texture((w, h), 4, dtype="f1")
            aux = self.ctx.texture((w, h), 2, dtype="f4")
            depth = self.ctx.depth_renderbuffer((w, h))
            self._fbos[(w, h)] = (self.ctx.framebuffer([color, aux], depth), color, aux)
        return self._fbos[(w, h)]

    def render(self, layers: list[MeshLayer], camera: Camera, light=(0.3, -0.5, -0.8), ambient: float = 0.35,
               near: float = 0.01, far: float = 10.0) -> Frame:
        """Draw ``layers`` from ``camera``; safe to call from any thread."""
        return self._gl.submit(self._render, layers, camera, light, ambient, near, far).result()

    def _render(self, layers, camera, light, ambient, near, far) -> Frame:
        s = self.supersample
        W, H = camera.width * s, camera.height * s
        fbo, color_tex, aux_tex = self._framebuffer(W, H)
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0)
        K = camera.K
        self.prog["R"].write(np.ascontiguousarray(camera.R.T, dtype="f4").tobytes())  # column-major
        self.prog["t"].value = tuple(map(float, camera.t))
        self.prog["intr"].value = (K[0, 0] * s, K[1, 1] * s, K[0, 2] * s, K[1, 2] * s)
        self.prog["size"].value = (float(W), float(H))
        self.prog["clip"].value = (near, far)
        light = np.asarray(light, float)
        self.prog["light"].value = tuple(light / np.linalg.norm(light))
        self.prog["ambient"].value = ambient
        for layer in layers:
            data = np.hstack([layer.vertices, layer.normals, layer.colors]).astype("f4")
            vbo = self.ctx.buffer(data.tobytes())
            ibo = self.ctx.buffer(np.asarray(layer.faces, dtype="i4").tobytes())
            vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_color")], ibo)
            self.prog["mesh_id"].value = float(layer.mesh_id)
            vao.render()
            vao.release()
            vbo.release()
            ibo.release()
        rgba = np.frombuffer(color_tex.read(), dtype=np.uint8).reshape(H, W, 4)[::-1].astype(np.float32) / 255.0
        aux = np.frombuffer(aux_tex.read(), dtype=np.float32).reshape(H, W, 2)[::-1]
        # GL's rows start at the bottom, hence the flips; then average each s×s block
        cov = rgba[..., 3]
        rgb = _block_mean(rgba[..., :3] * cov[..., None], s)
        alpha = _block_mean(cov, s)
        ids_hi = np.rint(aux[..., 0]).astype(np.uint8)
        ids = _block_majority(ids_hi, s)
        z = np.where(ids_hi > 0, aux[..., 1], np.inf)
        depth = z.reshape(H // s, s, W // s, s).min(axis=(1, 3))  # nearest surface in each block
        depth[(ids == 0) | ~np.isfinite(depth)] = 0.0
        return Frame(rgb=rgb, alpha=alpha, ids=ids, depth=depth)


def _block_mean(x: np.ndarray, s: int) -> np.ndarray:
    if s == 1:
        return x
    h, w = x.shape[0] // s, x.shape[1] // s
    return x.reshape(h, s, w, s, *x.shape[2:]).mean(axis=(1, 3))


def _block_majority(ids: np.ndarray, s: int) -> np.ndarray:
    """The most frequent id in each s×s block (ties go to the larger id: foreground wins)."""
    if s == 1:
        return ids
    h, w = ids.shape[0] // s, ids.shape[1] // s
    blocks = ids.reshape(h, s, w, s).transpose(0, 2, 1, 3).reshape(h, w, s * s)
    counts = np.stack([(blocks == v).sum(-1) for v in range(int(ids.max()) + 1)], -1)
    idx = np.argmax(counts[..., ::-1], axis=-1)
    return (counts.shape[-1] - 1 - idx).astype(np.uint8)


_shared: dict = {}
_shared_lock = threading.Lock()


def shared_renderer() -> Renderer:
    """This process's renderer, made on first use (a forked child makes its own: GL contexts do not
    survive a fork)."""
    with _shared_lock:
        pid = os.getpid()
        if pid not in _shared:
            _shared.clear()
            _shared[pid] = Renderer()
        return _shared[pid]
