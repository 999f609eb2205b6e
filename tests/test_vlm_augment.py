"""Training augmentation of the tiny tower: masks follow the pixels, swapped backgrounds keep the
foreground, and a seed gives the same batch (so a resumed run sees the same images)."""
import torch

from occ_core.vlm.augment import AugmentConfig, augment, background_bank, denormalise, normalise
from occ_core.vlm.train import BACKGROUND, HAND, patch_classes


def _square_batch(b=6, size=48):
    """Red squares at random places on a mid-grey background, the square as the mask."""
    gen = torch.Generator().manual_seed(3)
    rgb = torch.full((b, 3, size, size), 0.5)
    mask = torch.zeros((b, 3, size, size))
    for i in range(b):
        y, x = torch.randint(8, size - 24, (2,), generator=gen).tolist()
        rgb[i, :, y:y + 16, x:x + 16] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
        mask[i, :, y:y + 16, x:x + 16] = 1.0
    return normalise(rgb), mask


def test_masks_follow_the_pixels_and_the_background_is_replaced():
    pixels, masks = _square_batch()
    cfg = AugmentConfig(background_p=1.0, white_p=1.0, jitter=0.0)
    out, out_masks = augment(pixels, masks[:, :1], masks, background_bank(4, 48), torch.Generator().manual_seed(0), cfg)
    rgb = denormalise(out)
    inside = out_masks[:, 0] > 0.99
    outside = out_masks[:, 0] < 0.01
    assert inside.sum() > 6 * 100  # the squares survive the zoom
    red = rgb.permute(0, 2, 3, 1)[inside]
    assert torch.allclose(red, torch.tensor([1.0, 0.0, 0.0]).expand_as(red), atol=0.02)
    rest = rgb.permute(0, 2, 3, 1)[outside]
    assert torch.allclose(rest, torch.ones_like(rest), atol=0.02)  # grey background → white
    assert not torch.equal(out_masks, masks)  # it did move things


def test_same_generator_seed_same_batch_and_jitter_stays_in_range():
    pixels, masks = _square_batch()
    bank = background_bank(8, 48, seed=5)
    a = augment(pixels, masks[:, :1], masks, bank, torch.Generator().manual_seed(11))
    b = augment(pixels, masks[:, :1], masks, bank, torch.Generator().manual_seed(11))
    c = augment(pixels, masks[:, :1], masks, bank, torch.Generator().manual_seed(12))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    rgb = denormalise(a[0])
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5


def test_patch_classes_from_masks():
    masks = torch.zeros((1, 3, 20, 20))
    masks[0, 0, :10, :10] = 1   # amodal object: top-left quarter
    masks[0, 1, :10, :5] = 1    # visible part of it: its left half
    masks[0, 2, 10:, 10:] = 1   # hand: bottom-right quarter
    photo = patch_classes(masks, torch.tensor([7]), grid=2, photo=True)[0]
    render = patch_classes(masks, torch.tensor([7]), grid=2, photo=False)[0]
    assert photo.tolist() == [[7, BACKGROUND], [BACKGROUND, HAND]]
    assert render.tolist() == [[7, BACKGROUND], [BACKGROUND, BACKGROUND]]
