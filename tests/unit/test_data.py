"""Dataset loaders, on small files the tests write in the datasets' real formats."""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nas_trainer.data import (DatasetError, DatasetUnavailable, ImageData, TextData,
                              load_dataset, read_idx)
from nas_trainer.data.download import fetch
from nas_trainer.data.splits import split_holdout


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], key: bytes) -> None:
    """The official python pickle: b'data' (N, 3072) uint8 rows in R, G, B planes."""
    with open(path, "wb") as f:
        pickle.dump({b"data": images.reshape(len(images), -1), key: labels,
                     b"batch_label": b"testing"}, f)


def cifar_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def test_cifar10_batches_load_with_layout_labels_and_a_held_out_validation_split(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = {}
    for i in range(1, 6):
        images[i] = cifar_images(4, i)
        write_cifar_batch(folder / f"data_batch_{i}", images[i], [i] * 4, b"labels")
    write_cifar_batch(folder / "test_batch", cifar_images(3, 9), [7, 8, 9], b"labels")
    data = load_dataset("cifar10", str(tmp_path), validation=5, download=False)
    assert isinstance(data, ImageData)
    assert data.train_x.shape == (15, 32, 32, 3) and data.val_x.shape == (5, 32, 32, 3)
    assert data.test_y.tolist() == [7, 8, 9] and data.num_classes == 10
    # Channels moved last: pixel (row 2, col 5) of the first image of batch 1.
    everything = torch.cat([data.train_x, data.val_x])
    labels = torch.cat([data.train_y, data.val_y])
    first = everything[labels == 1]
    expected = torch.from_numpy(images[1][:, :, 2, 5].copy())
    assert any(torch.equal(row, exp) for row in first[:, 2, 5] for exp in expected)
    assert sorted(labels.tolist()) == sorted(sum(([i] * 4 for i in range(1, 6)), []))


def test_cifar100_is_read_from_the_official_archive_with_fine_labels(tmp_path, monkeypatch):
    staging = tmp_path / "staging" / "cifar-100-python"
    staging.mkdir(parents=True)
    write_cifar_batch(staging / "train", cifar_images(10, 1), list(range(90, 100)), b"fine_labels")
    write_cifar_batch(staging / "test", cifar_images(2, 2), [0, 99], b"fine_labels")
    root = tmp_path / "cifar100"
    root.mkdir()
    with tarfile.open(root / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(staging, arcname="cifar-100-python")
    # Found in dataPath, the archive is checked against the official MD5 (patched to
    # this test archive's) before it is extracted.
    from nas_trainer.data import cifar

    md5 = hashlib.md5((root / "cifar-100-python.tar.gz").read_bytes()).hexdigest()
    original = cifar.CIFAR["cifar100"]
    monkeypatch.setitem(cifar.CIFAR, "cifar100", (original[0], md5, *original[2:]))
    data = load_dataset("cifar100", str(root), validation=0.2)
    assert data.num_classes == 100 and len(data.train_y) == 8 and len(data.val_y) == 2
    assert set(data.train_y.tolist()) | set(data.val_y.tolist()) == set(range(90, 100))


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                          *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gzipped", [True, False])
def test_mnist_idx_files_load_gzipped_or_not(tmp_path, gzipped):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(12) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)),
              "t10k-labels-idx1-ubyte": np.array([3, 1, 4, 1])}
    raw = tmp_path / "MNIST" / "raw"  # the layout torchvision leaves behind
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        payload = idx_bytes(array)
        if gzipped:
            (raw / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (raw / name).write_bytes(payload)
    data = load_dataset("mnist", str(tmp_path), validation=2, download=False)
    assert data.train_x.shape == (10, 28, 28, 1) and data.val_x.shape == (2, 28, 28, 1)
    assert data.test_y.tolist() == [3, 1, 4, 1]
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"][2]).byte()
    assert torch.equal(data.test_x[2, :, :, 0], expected)
    assert data.augment.flip is False  # digits must not be mirrored


def test_read_idx_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((4, 2, 2)))[:-3])
    with pytest.raises(DatasetError, match="header says"):
        read_idx(path)


def test_missing_files_without_download_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(DatasetError, match="fashion-mnist"):
        load_dataset("fashion-mnist", str(tmp_path), download=False)


def test_image_folder_reads_one_folder_per_class_and_a_test_split(tmp_path):
    from PIL import Image

    for split, count in (("train", 5), ("test", 2)):
        for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (20, 12), colour).save(folder / f"{i}.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    data = load_dataset("image-folder", str(tmp_path), validation=2,
                        options={"imageSize": 16})
    assert data.num_classes == 2 and data.input_shape == (3, 16, 16)
    assert len(data.train_y) == 8 and len(data.test_y) == 4
    dogs = torch.cat([data.train_x[data.train_y == 1], data.val_x[data.val_y == 1]])
    assert dogs[..., 2].min() == 255 and dogs[..., 0].max() == 0   # class 1 = "dog" = blue


def test_image_folder_test_split_must_name_the_training_classes(tmp_path):
    from PIL import Image

    for split, labels in (("train", ("cat", "dog", "fox")), ("test", ("cat", "dgo"))):
        for label in labels:
            (tmp_path / split / label).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / split / label / "0.png")
    expected = r"test must have the class folders of .*train \(missing: \['dog', 'fox'\]; "
    with pytest.raises(DatasetError, match=expected + r"not in train: \['dgo'\]\)"):
        load_dataset("image-folder", str(tmp_path), validation=1)


def test_ptb_corpus_builds_its_vocabulary_from_the_training_text(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" the cat sat \n the dog sat \n")
    (tmp_path / "ptb.valid.txt").write_text(" the bird sat \n")
    (tmp_path / "ptb.test.txt").write_text(" a cat \n")
    data = load_dataset("ptb", str(tmp_path), download=False)
    assert isinstance(data, TextData)
    assert data.vocab[:2] == ["<eos>", "<unk>"]
    words = [data.vocab[i] for i in data.val.tolist()]
    assert words == ["the", "<unk>", "sat", "<eos>"]      # unseen words become <unk>
    assert len(data.train) == 8 and data.vocab_size == 6


def test_digits_splits_are_disjoint_seeded_and_keep_the_test_set_fixed():
    a = load_dataset("digits", split_seed=0)
    b = load_dataset("digits", split_seed=0)
    c = load_dataset("digits", split_seed=1)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_x, c.val_x)
    assert torch.equal(a.test_x, c.test_x)  # the test set never depends on the split seed
    assert len(a.train_y) + len(a.val_y) + len(a.test_y) == 1797


def test_split_holdout_partitions_the_training_set():
    x = torch.arange(100).view(100, 1)
    train_x, _, val_x, _ = split_holdout(x, torch.zeros(100, dtype=torch.long), 0.1, seed=3)
    assert len(val_x) == 10 and len(train_x) == 90
    assert sorted(torch.cat([train_x, val_x]).flatten().tolist()) == list(range(100))
    with pytest.raises(ValueError, match="at least one training example"):
        split_holdout(x, torch.zeros(100, dtype=torch.long), 100, seed=0)


def test_synthetic_is_deterministic_and_learnable_shaped():
    a = load_dataset("synthetic", options={"images": 200, "imageSize": 8, "testImages": 20})
    b = load_dataset("synthetic", options={"images": 200, "imageSize": 8, "testImages": 20})
    assert torch.equal(a.train_x, b.train_x) and a.train_x.dtype == torch.uint8
    assert a.input_shape == (3, 8, 8) and len(a.test_y) == 20
    # Classes differ in their mean image: a nearest-class-mean classifier beats chance.
    x, y = a.train_x.float().flatten(1), a.train_y
    means = torch.stack([x[y == k].mean(0) for k in range(10)])
    predicted = torch.cdist(a.test_x.float().flatten(1), means).argmin(1)
    assert (predicted == a.test_y).float().mean() > 0.5


def test_fetch_downloads_verifies_and_refuses_a_bad_checksum(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"official bytes")
    good = hashlib.md5(b"official bytes").hexdigest()
    target = tmp_path / "cache" / "file.bin"
    assert fetch([source.as_uri()], target, good).read_bytes() == b"official bytes"
    with pytest.raises(DatasetUnavailable, match="md5"):  # a bad download: worth a retry
        fetch([source.as_uri()], tmp_path / "other.bin", "0" * 32)
    assert not (tmp_path / "other.bin").exists()
    with pytest.raises(DatasetUnavailable, match="could not fetch"):
        fetch([(tmp_path / "missing").as_uri()], tmp_path / "x.bin", good)


def test_unknown_dataset_and_options_are_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="takes no options"):
        load_dataset("digits", options={"imageSize": 16})


def test_cifar_archive_with_path_traversal_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    from nas_trainer.data import cifar

    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    original = cifar.CIFAR["cifar10"]
    monkeypatch.setitem(cifar.CIFAR, "cifar10", (original[0], md5, *original[2:]))
    with pytest.raises(DatasetError, match="unsafe"):
        load_dataset("cifar10", str(tmp_path))
