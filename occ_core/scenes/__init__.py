"""Synthetic SOMVideo-style hand-held-object scenes: objects, hand, grasp, rendering, on-disk format."""
