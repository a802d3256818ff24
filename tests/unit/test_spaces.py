"""Search spaces: what the controller emits, what the trainer builds from, and the errors a
user sees for malformed architectures."""
from __future__ import annotations

import itertools
import json
import random

import pytest
from nas_bench_graph import Arch, gnn_list_proteins, light_read

from nas_trainer.architecture import Architecture
from nas_trainer.spaces import Anchor, OptionError, get_space

SPACES = [
    ("macro-cnn", {}),
    ("macro-cnn", {"layers": 4, "strides": True, "skips": False}),
    ("nasnet", {}),
    ("nasnet", {"blocks": 3}),
    ("rnn-cell", {}),
    ("rnn-cell", {"base": 2}),
    ("nas-bench-201", {}),
    ("nas-bench-graph", {}),
    ("nas-bench-graph", {"dataset": "proteins"}),
]
CUSTOM_DECISIONS = [{"name": "lr", "choices": ["0.1", "0.01"]},
                    {"name": "width", "choices": [16, 32, 64]},
                    {"name": "dropout", "choices": [True, False]}]


def all_spaces():
    return [get_space(name, options) for name, options in SPACES] + [
        get_space("custom", None, CUSTOM_DECISIONS)]


@pytest.mark.parametrize("space", all_spaces(), ids=repr)
def test_random_architectures_validate_and_round_trip(space):
    rng = random.Random(0)
    for _ in range(20):
        arch = space.random(rng)
        assert space.validate(arch.tokens) == arch.tokens
        # Contract 2 JSON, through text and back.
        doc = json.loads(json.dumps(arch.to_json()))
        assert doc["schema"] == "nas.architecture/v1" and doc["hash"] == arch.hash
        assert space.parse(doc) == arch
        assert Architecture.from_json(doc).canonical == arch.canonical
        # The canonical form alone gives back an equivalent architecture.
        again = space.from_canonical(json.loads(json.dumps(arch.canonical)))
        assert again.hash == arch.hash and again.canonical == arch.canonical


@pytest.mark.parametrize("space", all_spaces(), ids=repr)
def test_mutation_changes_one_decision(space):
    rng = random.Random(1)
    for _ in range(20):
        parent = space.random(rng)
        child = space.mutate(parent, rng)
        assert sum(a != b for a, b in zip(parent.tokens, child.tokens)) == 1
        assert child.hash != parent.hash
        space.validate(child.tokens)


def test_same_seed_same_architectures():
    space = get_space("nasnet")
    first = [space.random(random.Random(7)).hash for _ in range(3)]
    assert first == [space.random(random.Random(7)).hash for _ in range(3)]


def test_hash_is_stable_across_processes():
    # sha256 of the canonical JSON, not Python's salted hash(): fixed forever.
    arch = get_space("nas-bench-201").from_canonical(
        {"arch_str": "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"})
    assert arch.hash == get_space("nas-bench-201").from_tokens(arch.tokens).hash
    assert len(arch.hash) == 16 and int(arch.hash, 16) >= 0
    assert arch.canonical["edges"]["1<-0"] == "nor_conv_3x3"
    assert arch.canonical["edges"]["3<-2"] == "none"


def test_macro_cnn_decisions_and_canonical_form():
    space = get_space("macro-cnn", {"layers": 3})
    names = [d.name for d in space.decisions]
    assert names[:3] == ["layers[0].filter_height", "layers[0].filter_width", "layers[0].filters"]
    anchors = [d.anchor for d in space.decisions if d.anchor is not None]
    assert anchors == [Anchor(1, 0), Anchor(2, 0), Anchor(2, 1)]
    arch = space.from_canonical({"layers": [
        {"filter_height": 3, "filter_width": 5, "filters": 36, "inputs": []},
        {"filter_height": 1, "filter_width": 7, "filters": 24, "inputs": [0]},
        {"filter_height": 7, "filter_width": 3, "filters": 64, "inputs": [0, 1]}]})
    assert arch.canonical["layers"][2] == {"filter_height": 7, "filter_width": 3, "filters": 64,
                                           "stride": 1, "inputs": [0, 1]}
    assert space.size() == (4 * 4 * 4) ** 3 * 2 ** 3


def test_nasnet_blocks_are_unordered_pairs():
    space = get_space("nasnet", {"blocks": 2})
    arch = space.random(random.Random(3))
    tokens = list(arch.tokens)
    # Swap (input 0, op 0) with (input 1, op 1) of the first normal block.
    tokens[0], tokens[1], tokens[2], tokens[3] = tokens[1], tokens[0], tokens[3], tokens[2]
    swapped = space.from_tokens(tokens)
    assert swapped.hash == arch.hash and swapped.canonical == arch.canonical


def test_nas_bench_graph_hash_is_the_package_valid_hash():
    space = get_space("nas-bench-graph")
    rng = random.Random(0)
    for _ in range(50):
        arch = space.random(rng)
        values = space.values(arch.tokens)
        link = [0] + [values[f"nodes[{i}].input"] for i in range(1, 4)]
        ops = [values[f"nodes[{i}].op"] for i in range(4)]
        assert arch.hash == str(Arch(link, ops).valid_hash())


def test_nas_bench_graph_equivalent_graphs_share_hash():
    space = get_space("nas-bench-graph")
    # Four nodes all reading the input: their order does not matter.
    a = space.from_canonical({"link": [0, 0, 0, 0], "ops": ["gcn", "gat", "sage", "fc"]})
    b = space.from_canonical({"link": [0, 0, 0, 0], "ops": ["fc", "sage", "gat", "gcn"]})
    assert a.tokens != b.tokens and a.hash == b.hash and a.canonical == b.canonical


def test_nas_bench_graph_size_counts_distinct_architectures():
    proteins = get_space("nas-bench-graph", {"dataset": "proteins"})
    hashes = set()
    for link in itertools.product([0], [0, 1], [0, 1, 2], [0, 1, 2, 3]):
        for ops in itertools.product(gnn_list_proteins, repeat=4):
            if set(ops) != {"skip"}:
                hashes.add(Arch(list(link), list(ops)).valid_hash())
    assert proteins.size() == len(hashes) == len(light_read("proteins"))
    assert get_space("nas-bench-graph").size() == len(light_read("cora"))


def test_sizes_of_countable_spaces():
    assert get_space("nas-bench-201").size() == 15625
    assert get_space("custom", None, CUSTOM_DECISIONS).size() == 12
    assert get_space("rnn-cell", {"base": 2}).size() == 8 ** 3 * 8 * 2 * 2


@pytest.mark.parametrize("space_name, options, canonical, message", [
    ("macro-cnn", {"layers": 3},
     {"layers": [{"filter_height": 3, "filter_width": 3, "filters": 24},
                 {"filter_height": 3, "filter_width": 3, "filters": 24},
                 {"filter_height": 3, "filter_width": 3, "filters": 40}]},
     "layers[2].filters must be one of 24, 36, 48, 64 (got 40)"),
    ("macro-cnn", {"layers": 2},
     {"layers": [{"filter_height": 3, "filter_width": 3, "filters": 24},
                 {"filter_height": 3, "filter_width": 3, "filters": 24, "inputs": [1]}]},
     "layers[1].inputs may only list earlier layers 0..0 (got [1])"),
    ("macro-cnn", {"layers": 2}, {"layers": []}, "layers must be a list of 2 layers"),
    ("nasnet", {"blocks": 1},
     {"normal": [{"inputs": [0, 1], "ops": ["conv_3x3", "conv_9x9"], "combine": "add"}],
      "reduction": [{"inputs": [0, 1], "ops": ["conv_3x3", "conv_3x3"], "combine": "add"}]},
     "normal[0].ops[1] must be one of identity"),
    ("nasnet", {"blocks": 1},
     {"normal": [{"inputs": [0, 2], "ops": ["conv_3x3", "conv_3x3"], "combine": "add"}],
      "reduction": [{"inputs": [0, 1], "ops": ["conv_3x3", "conv_3x3"], "combine": "mul"}]},
     "normal[0].inputs[1] must be one of 0, 1 (got 2)"),
    ("nas-bench-201", {}, {"arch_str": "|conv~0|"}, "arch_str must look like"),
    ("nas-bench-graph", {}, {"link": [0, 0, 0, 0], "ops": ["skip"] * 4},
     "all skip: the architecture has no GNN layer"),
    ("nas-bench-graph", {}, {"link": [0, 0, 3, 0], "ops": ["gcn"] * 4},
     "nodes[2].input must be one of 0, 1, 2 (got 3)"),
    ("rnn-cell", {"base": 2}, {"base": 2, "nodes": [], "cell_inject": {}},
     "nodes must be a list of 3 nodes"),
])
def test_malformed_canonical_forms_are_rejected_with_the_field(space_name, options, canonical,
                                                               message):
    with pytest.raises(ValueError) as error:
        get_space(space_name, options).from_canonical(canonical)
    assert message in str(error.value)


def test_malformed_tokens_and_documents_are_rejected():
    space = get_space("nas-bench-201")
    with pytest.raises(ValueError, match=r"takes 6 tokens \(got 5\)"):
        space.from_tokens([0] * 5)
    with pytest.raises(ValueError, match=r"tokens\[2\] \(edges\[2<-1\]\) must be in 0..4 \(got 9\)"):
        space.from_tokens([0, 0, 9, 0, 0, 0])
    doc = space.random(random.Random(0)).to_json()
    with pytest.raises(ValueError, match="does not match its tokens"):
        space.parse({**doc, "hash": "0" * 16})
    with pytest.raises(ValueError, match="is of space 'nasnet'"):
        space.parse({**doc, "space": "nasnet"})
    with pytest.raises(ValueError, match="schema must be"):
        space.parse({**doc, "schema": "other/v9"})
    with pytest.raises(ValueError, match="is not a decision of this space"):
        get_space("custom", None, CUSTOM_DECISIONS).from_canonical({"momentum": 0.9})


def test_option_and_name_errors_say_what_is_valid():
    with pytest.raises(OptionError, match=r"layers must be >= 1 \(got 0\)"):
        get_space("macro-cnn", {"layers": 0})
    with pytest.raises(OptionError, match=r"depth is not an option of macro-cnn \(valid: "
                                          r"layers, skips, strides\)"):
        get_space("macro-cnn", {"depth": 3})
    with pytest.raises(OptionError, match="strides must be true or false"):
        get_space("macro-cnn", {"strides": "yes"})
    with pytest.raises(OptionError, match="dataset must be one of cora, citeseer"):
        get_space("nas-bench-graph", {"dataset": "mnist"})
    with pytest.raises(ValueError, match="unknown search space 'darts' .valid: macro-cnn, nasnet"):
        get_space("darts")
    with pytest.raises(ValueError, match=r"decisions\[1\].name 'lr' is used twice"):
        get_space("custom", None, [{"name": "lr", "choices": [1]}, {"name": "lr", "choices": [2]}])


def test_architecture_equality_ignores_meta():
    space = get_space("custom", None, CUSTOM_DECISIONS)
    arch = space.from_tokens([0, 1, 1])
    tagged = arch.with_meta(log_prob=-1.5, policy_version=3)
    assert tagged == arch and hash(tagged) == hash(arch)
    assert tagged.meta["log_prob"] == -1.5 and not arch.meta
    assert "meta" not in tagged.to_json() and tagged.to_json(include_meta=True)["meta"]
