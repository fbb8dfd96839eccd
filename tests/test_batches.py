import torch

from rnnlab.data import SequenceBatches, epoch_permutation, to_sequences, view_permutation


def make(n=203, batch=16, **kw):
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8)[:, None, None].expand(n, 28, 28)
    inputs = to_sequences(images)
    return SequenceBatches(inputs, torch.arange(n), batch, **kw)


def test_every_image_exactly_once_per_epoch():
    batches = make(shuffle=True, seed=3)
    for epoch in range(3):
        seen = torch.cat([y for _, y in batches.epoch(epoch)])
        assert sorted(seen.tolist()) == list(range(203))
    assert len(batches) == 13  # 12 full batches of 16 and one of 11


def test_shuffle_is_seeded_and_changes_per_epoch():
    a, b = make(shuffle=True, seed=3), make(shuffle=True, seed=3)
    first = [y for _, y in a.epoch(0)]
    assert all(torch.equal(x, y) for x, y in zip(first, [y for _, y in b.epoch(0)]))
    assert not torch.equal(torch.cat(first), torch.cat([y for _, y in a.epoch(1)]))
    assert not torch.equal(epoch_permutation(100, 3, 0), epoch_permutation(100, 4, 0))
    assert torch.equal(torch.cat([y for _, y in make(shuffle=False).epoch(5)]), torch.arange(203))


def test_resume_mid_epoch_gives_the_remaining_batches():
    batches = make(shuffle=True, seed=9)
    full = [y for _, y in batches.epoch(2)]
    rest = [y for _, y in batches.epoch(2, start=5)]
    assert all(torch.equal(x, y) for x, y in zip(full[5:], rest)) and len(rest) == len(full) - 5


def test_shards_partition_each_global_batch():
    single = make(shuffle=True, seed=1)
    shards = [make(shuffle=True, seed=1, rank=r, world_size=3) for r in range(3)]
    for global_y, *parts in zip(*(b.epoch(4) for b in [single, *shards])):
        union = torch.cat([y for _, y in parts])
        assert sorted(union.tolist()) == sorted(global_y[1].tolist())


def test_views_shapes_and_normalisation():
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    rows = to_sequences(images, "rows")
    assert rows.shape == (5, 28, 28)
    assert torch.allclose(rows, (images.float() / 255 - 0.5) / 0.5)
    pixels = to_sequences(images, "pixels")
    assert pixels.shape == (5, 784, 1) and torch.equal(pixels.flatten(1), rows.flatten(1))
    perm = view_permutation(7)
    permuted = to_sequences(images, "permuted", perm)
    assert permuted.shape == (5, 784, 1)
    assert torch.equal(permuted[:, :, 0], rows.flatten(1)[:, perm])
    assert torch.equal(perm, view_permutation(7)) and not torch.equal(perm, view_permutation(8))
    assert sorted(perm.tolist()) == list(range(784))
