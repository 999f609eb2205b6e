"""Geometry utilities of the 3D branch, the meshing error paths and mesh export."""
import numpy as np
import pytest
import torch
import trimesh

from occ_core.errors import ReconstructionError
from occ_core.geometry import Camera, intrinsics_for, project_points, rotation_about
from occ_core.meshing import grid_points, mesh_from_grid
from occ_core.recon.features import bone_frames, points_in_bone_frames, positional_encoding, project, sample_maps
from occ_core.recon.infer import export_mesh, square_resize, to_rgb_array
from occ_core.scenes.generate import make_scene
from occ_core.scenes.hand import BONES


def test_projection_matches_numpy_and_the_camera():
    cam = Camera.look_at([0.1, -0.2, -0.5], [0, 0, 0], [0, -1, 0], 128)
    pts = np.random.default_rng(0).uniform(-0.05, 0.05, (50, 3))
    uv_np = cam.project(pts)
    uv_t = project(torch.from_numpy(cam.world_to_camera(pts))[None], torch.from_numpy(cam.K)[None])[0].numpy()
    assert np.allclose(uv_np, uv_t, atol=1e-6)
    # the target projects to the principal point; a point on the optical axis too
    assert np.allclose(cam.project(np.zeros((1, 3))), [[64, 64]], atol=1e-9)
    # scaling camera-frame points does not move their projection (the normalised frame relies on it)
    pc = cam.world_to_camera(pts)
    assert np.allclose(project_points(pc, cam.K), project_points(pc / 0.07, cam.K))


def test_sample_maps_reads_pixel_centres():
    maps = torch.arange(16.0).view(1, 1, 4, 4)
    # pixel (col 2, row 1) has its centre at (2.5, 1.5) on a 4-pixel image
    out = sample_maps(maps, torch.tensor([[[2.5, 1.5], [0.5, 0.5]]]), 4)
    assert torch.allclose(out[0, :, 0], torch.tensor([6.0, 0.0]))


def test_bone_frames_are_rotations_that_follow_the_hand():
    joints = torch.from_numpy(make_scene(0, 3).hand.joints).float()[None]
    origin, R = bone_frames(joints)
    assert R.shape == (1, 20, 3, 3)
    eye = torch.eye(3).expand(20, 3, 3)
    assert torch.allclose(R[0] @ R[0].transpose(-1, -2), eye, atol=1e-4)  # float32
    assert torch.allclose(torch.linalg.det(R[0]), torch.ones(20), atol=1e-5)
    # each bone's child joint lies on its frame's x axis at the bone's length
    child = joints[0, [b for _, b in BONES]]
    local = torch.einsum("jkc,jc->jk", R[0], child - origin[0])
    assert torch.allclose(local[:, 1:], torch.zeros(20, 2), atol=1e-5)
    assert torch.all(local[:, 0] > 0)
    # moving the whole hand and the points rigidly leaves the bone-frame coordinates unchanged
    rot = torch.from_numpy(rotation_about([0.3, 1, 0.2], 0.8)).float()
    pts = torch.randn(1, 30, 3) * 0.05
    a = points_in_bone_frames(pts, joints)
    b = points_in_bone_frames(pts @ rot.T + 0.1, joints @ rot.T + 0.1)
    assert torch.allclose(a, b, atol=1e-5)


def test_positional_encoding_shape_and_values():
    x = torch.tensor([[0.5, -0.25, 0.0]])
    pe = positional_encoding(x, 2)
    assert pe.shape == (1, 3 + 12)
    assert torch.allclose(pe[0, :3], x[0])
    assert torch.allclose(pe[0, 3:6], torch.sin(torch.pi * x[0]), atol=1e-6)


def _sphere_grid(n=33, r=0.5):
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    pts = grid_points(lo, hi, (n,) * 3)
    return (np.linalg.norm(pts, axis=1) - r).reshape((n,) * 3), lo, hi


def test_mesh_from_grid_and_its_errors():
    values, lo, hi = _sphere_grid()
    mesh = mesh_from_grid(values, lo, hi)
    assert mesh.is_watertight and mesh.volume > 0
    assert np.allclose(np.linalg.norm(mesh.vertices, axis=1), 0.5, atol=0.01)
    with pytest.raises(ReconstructionError, match="no zero crossing.*outside"):
        mesh_from_grid(np.abs(values) + 0.1, lo, hi)
    with pytest.raises(ReconstructionError, match="no zero crossing.*inside"):
        mesh_from_grid(-np.abs(values) - 0.1, lo, hi)
    bad = values.copy()
    bad[3, 4, 5] = np.nan
    with pytest.raises(ReconstructionError, match="NaN"):
        mesh_from_grid(bad, lo, hi)


@pytest.mark.parametrize("suffix", [".glb", ".obj", ".ply"])
def test_export_round_trip(tmp_path, suffix):
    values, lo, hi = _sphere_grid()
    mesh = mesh_from_grid(values, lo, hi)
    mesh.visual.vertex_colors = np.tile([200, 30, 30, 255], (len(mesh.vertices), 1)).astype(np.uint8)
    path = export_mesh(mesh, tmp_path / f"object{suffix}")
    back = trimesh.load(path, force="mesh", process=False)
    assert len(back.faces) == len(mesh.faces)
    assert np.isclose(back.area, mesh.area, rtol=1e-4)
    # y and z flipped for viewers (camera frame is y-down): bounds mirror
    assert np.allclose(back.bounds[0][1], -mesh.bounds[1][1], atol=1e-4)


def test_image_conversions():
    from PIL import Image
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))  # fully transparent → white
    assert to_rgb_array(rgba)[0, 0].tolist() == [255, 255, 255]
    grey16 = Image.fromarray((np.arange(400, dtype=np.uint16).reshape(20, 20) * 160))
    out = to_rgb_array(grey16)
    assert out.shape == (20, 20, 3) and out.max() == 255 and out[0, 0, 0] == 0
    sq = square_resize(np.zeros((20, 40, 3), np.uint8), 32)
    assert sq.shape == (32, 32, 3)
    assert intrinsics_for(256)[0, 0] == 480.0
