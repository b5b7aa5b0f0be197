"""Bits are bytes: every kind compresses images losslessly into about -log2 p(x) bits, and a file that
cannot be decoded into its images is refused with one line."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from pixelcnn.__main__ import main
from pixelcnn.explain.pixels import bits_per_value
from pixelcnn.store.checkpoint import save_checkpoint
from pixelcnn.explain.codec import CHUNK, CodecError, baseline_sizes, compress, decompress, read_header
from pixelcnn.models import KINDS
from pixelcnn.models import random_model

ALL_KINDS = pytest.mark.parametrize("name", sorted(KINDS))


def images_from(model, n: int, seed: int = 0) -> np.ndarray:
    """Images the model itself finds likely-ish: structure, not noise (its samples)."""
    from pixelcnn.sampling import sample

    return sample(model, n, seed=seed)


@ALL_KINDS
@pytest.mark.parametrize("threads", [(1, 1), (2, 1), (1, 2)])
def test_round_trip_for_every_kind_whatever_the_threads(name, threads):
    """Encoded with one thread count and decoded with another, bit for bit; the streams cost -log2 p(x)
    plus a few bytes per stream."""
    model = random_model(KINDS[name].test_config(), seed=1)
    images = images_from(model, 3)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads[0])
        encoded = compress(model, images)
        torch.set_num_threads(threads[1])
        decoded, labels = decompress(model, encoded.data)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(decoded, images) and labels is None
    expected = sum(float(bits_per_value(model, image).astype(np.float64).sum()) for image in images)
    assert abs(encoded.model_bits - expected) < 1e-2 * expected + 1e-3
    stream_bits = 8 * (len(encoded.data) - encoded.header_bytes)
    assert encoded.model_bits <= stream_bits <= encoded.model_bits + 64 + 32


@ALL_KINDS
def test_round_trip_of_a_conditional_model_with_its_labels(name):
    model = random_model(replace(KINDS[name].test_config(), classes=4), seed=2)
    with torch.no_grad():
        model.label_bias.table.normal_(generator=torch.Generator().manual_seed(0))
    images = images_from(model, 4)
    labels = np.array([0, 3, 1, 3])
    encoded = compress(model, images, labels)
    decoded, decoded_labels = decompress(model, encoded.data)
    assert np.array_equal(decoded, images) and np.array_equal(decoded_labels, labels)
    unlabelled = compress(model, images)  # coded under "no label": other probabilities, the same images back
    assert unlabelled.data != encoded.data and np.array_equal(decompress(model, unlabelled.data)[0], images)
    # What one forward pass given the label says each value costs (the view's first figures) is what it cost.
    for image, label, coded in zip(images, labels, encoded.bits):
        assert np.abs(bits_per_value(model, image, int(label)) - coded).max() < 1e-4
    assert np.abs(bits_per_value(model, images[1]) - encoded.bits[1]).max() > 1e-2  # no label: other bits


def test_several_streams_and_the_decoders_view_of_the_first(monkeypatch):
    import pixelcnn.explain.codec as codec

    monkeypatch.setattr(codec, "CHUNK", 2)
    model = random_model(KINDS["pixelcnn"].test_config(), seed=3)
    images = images_from(model, 5)
    encoded = compress(model, images)
    header, streams = read_header(encoded.data)
    assert header["chunk"] == 2 and len(streams) == 3
    seen = []
    decoded, _ = decompress(model, encoded.data,
                            on_step=lambda r, c, group, values, probs: seen.append((r, c, values.copy(), probs)))
    assert np.array_equal(decoded, images) and len(seen) == 10 * 10
    r, c, values, probs = seen[57]
    assert np.array_equal(values, images[:2, r, c]) and probs.shape == (2 * 3, 4)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert CHUNK == 100


@ALL_KINDS
def test_the_decoding_recording_replays_the_image_from_the_stream(name):
    from pixelcnn.explain.codec import decoding

    model = random_model(KINDS[name].test_config(), seed=8)
    images = images_from(model, 2)
    recording, decoded = decoding(model, compress(model, images).data)
    assert np.array_equal(recording.image, images[0]) and np.array_equal(decoded, images)
    steps_per_pixel = len(KINDS[name].channel_steps(model.config))
    assert len(recording.steps) == steps_per_pixel * 10 * 10
    for (r, c, group), dist in zip(recording.steps, recording.distributions):
        assert np.allclose(dist[group].sum(axis=1), 1.0) and (dist[group][np.arange(len(group)),
                                                                        images[0, r, c, group]] > 0).all()


def test_what_cannot_be_decoded_is_refused():
    model = random_model(KINDS["pixelcnn"].test_config(), seed=4)
    other = random_model(KINDS["pixelcnn"].test_config(), seed=5)
    data = compress(model, images_from(model, 2)).data
    with pytest.raises(CodecError, match="another model"):
        decompress(other, data)
    with pytest.raises(CodecError, match="truncated"):
        decompress(model, data[:-4])
    with pytest.raises(CodecError, match="truncated|damaged"):
        decompress(model, data[:40])
    with pytest.raises(CodecError, match="not a file"):
        decompress(model, b"\x89PNG\r\n\x1a\n" + data[8:])
    header_end = len(data) - 4 * sum(read_header(data)[0]["streams"])
    for position in (header_end + 1, len(data) - 1, header_end - 3):  # the streams, and the header's checksum
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        with pytest.raises(CodecError, match="checksum|damaged"):
            decompress(model, bytes(flipped))
    with pytest.raises(CodecError, match="version"):
        decompress(model, data[:6] + bytes([9]) + data[7:])


def test_baselines_are_lossless_sizes_of_the_same_values():
    images = np.random.default_rng(0).integers(0, 4, (3, 28, 28, 3)).astype(np.uint8)
    sizes = baseline_sizes(images)
    assert sizes["raw"] == images.size
    assert 0 < sizes["gzip"] and 0 < sizes["bzip2"] and 0 < sizes["lzma"] and 0 < sizes["png"]
    flat = baseline_sizes(np.zeros((3, 28, 28, 3), dtype=np.uint8))
    assert all(flat[name] < sizes[name] for name in ("png", "gzip", "bzip2", "lzma"))


def test_lzma_with_a_dictionary_cut_to_the_input_is_as_long_as_preset_9e():
    """The cut dictionary spares a 64 MiB allocation per image; the output must be as long as preset 9e's
    (its bytes differ only in the dictionary size the header records)."""
    import lzma

    from pixelcnn.explain.codec import lzma_strongest

    rng = np.random.default_rng(1)
    for n in (1, 3, 40):
        images = np.zeros((n, 28, 28, 3), dtype=np.uint8)
        images[:, 6:22, 10:16] = rng.integers(0, 4, 3)
        images[rng.random(images.shape) < 0.05] = 3
        raw = images.tobytes()
        assert len(lzma_strongest(raw)) == len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
        assert lzma.decompress(lzma_strongest(raw)) == raw


def test_cli_round_trip_and_one_line_refusals(tmp_path, capsys):
    model = random_model(KINDS["pixelcnn"].test_config(), seed=6)
    config = replace(KINDS["pixelcnn"].test_config(), image_size=28)
    model = random_model(config, seed=6)
    save_checkpoint(tmp_path / "a.pt", model)
    save_checkpoint(tmp_path / "b.pt", random_model(config, seed=7))
    images = images_from(model, 2)
    np.save(tmp_path / "x.npy", images)
    assert main(["compress", "--checkpoint", str(tmp_path / "a.pt"), "--images", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "x.pxz")]) == 0
    out = capsys.readouterr().out
    assert "-log2 p(x) under the model" in out and "gzip" in out and "PNG" in out
    assert main(["decompress", "--checkpoint", str(tmp_path / "a.pt"), str(tmp_path / "x.pxz"),
                 "--npy", str(tmp_path / "y.npy"), "--png", str(tmp_path / "y.png")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), images) and (tmp_path / "y.png").stat().st_size > 0
    capsys.readouterr()
    for argv in (["decompress", "--checkpoint", str(tmp_path / "b.pt"), str(tmp_path / "x.pxz"), "--npy",
                  str(tmp_path / "z.npy")],
                 ["decompress", "--checkpoint", str(tmp_path / "a.pt"), str(tmp_path / "x.npy"), "--npy",
                  str(tmp_path / "z.npy")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "z.npy").exists()
