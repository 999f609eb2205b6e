"""The 3D branch (paper §2.3, after MOHO and gSDF): image → object SDF → mesh → render without the hand."""
from occ_core.recon.infer import CheckpointError, Reconstructor, export_mesh
from occ_core.recon.types import Reconstruction

__all__ = ["CheckpointError", "Reconstruction", "Reconstructor", "export_mesh"]
