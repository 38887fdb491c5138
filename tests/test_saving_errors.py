"""Saving and loading shrunk models with bad files: one clear line naming the file, never an unsafe hint."""

import json
import random
import struct
import zipfile

import pytest
import torch

import workbench as wb
from workbench.models import build_model
from workbench.structure.saving import CHECKSUM


class Opaque:
    """An object that is not a tensor: loading never unpickles it."""


@pytest.fixture(scope="module")
def small():
    return wb.shrink(wb.pretrained("mlp"), sparsity=0.5, pattern="neuron")


@pytest.fixture
def saved(small, tmp_path):
    path = tmp_path / "small.pt"
    wb.save_shrunk(small, path)
    return path


def _error(call, *args, **kwargs) -> str:
    """The message of the ValueError ``call`` raises, checked to be one line with no unsafe hint beneath."""
    with pytest.raises(ValueError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "weights_only" not in message, message
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)  # none shown under it
    return message


def _write_pt(path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)


def _data_offset(path, entry) -> int:
    """Where the bytes of a stored (uncompressed) zip entry start in the file."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry)
    with open(path, "rb") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
    return info.header_offset + 30 + name_length + extra_length


@pytest.mark.parametrize(
    "content,why",
    [
        (random.Random(0).randbytes(300), "is not a PyTorch weights file"),
        (b"", "is empty"),
        (b"hello, these are not weights\n", "is not a PyTorch weights file"),
        ("half", "is truncated or damaged"),
        ({"fc1.weight": torch.ones(2), "note": Opaque()}, "holds objects other than tensors"),
        ([torch.ones(2)], "holds a list, not a state_dict"),
    ],
    ids=["random bytes", "empty", "text", "truncated", "pickled object", "list"],
)
def test_bad_weights_file_names_the_file_and_what_is_wrong(saved, content, why):
    raw = saved.read_bytes()
    _write_pt(saved, raw[: len(raw) // 2] if content == "half" else content)
    message = _error(wb.load_shrunk, saved)
    assert message.startswith(str(saved)) and why in message


def test_missing_weights_name_the_weights_file(saved):
    saved.unlink()
    message = _error(wb.load_shrunk, saved)
    assert message.startswith(f"{saved} cannot be read") and ".json" not in message


def test_missing_or_broken_json_names_the_json(saved):
    meta_path = saved.with_suffix(".json")
    text = meta_path.read_text()
    meta_path.unlink()
    assert _error(wb.load_shrunk, saved).startswith(f"{meta_path} cannot be read")
    meta_path.write_text(text[: len(text) // 2])
    assert _error(wb.load_shrunk, saved).startswith(f"{meta_path} is not JSON")
    meta_path.write_text("[1, 2]")
    assert _error(wb.load_shrunk, saved).startswith(f"{meta_path} holds a JSON list")


def test_json_of_another_model_says_which_tensors_do_not_fit(saved):
    meta_path = saved.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "model": "cnn", "config": None}))
    message = _error(wb.load_shrunk, saved)
    assert message.startswith(f"{saved} does not fit the cnn model small.json describes: the file lacks")
    assert "lacks 38 tensors (block1.bn1.bias, " in message and "has 6 tensors (fc1.bias, fc1.weight, " in message


def test_a_template_that_does_not_fit_is_left_as_it_was(saved):
    template = build_model("mlp", hidden=(300, 100, 50))  # fc1 … fc3 get resized before fc4 is found missing
    before = {k: v.clone() for k, v in template.state_dict().items()}
    message = _error(wb.load_shrunk, saved, template=template)
    assert message == f"{saved} does not fit the template MLP: the file lacks 2 tensors (fc4.bias, fc4.weight)"
    after = template.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_flipped_bytes_fail_the_checksum(small, saved):
    entry = next(name for name in zipfile.ZipFile(saved).namelist() if name.endswith("/data/0"))
    raw = bytearray(saved.read_bytes())
    raw[_data_offset(saved, entry) + 5] ^= 0xFF
    saved.write_bytes(raw)
    changed = torch.load(saved, weights_only=True)  # torch itself does not notice
    assert not all(torch.equal(changed[k], v) for k, v in small.state_dict().items())
    message = _error(wb.load_shrunk, saved)
    assert message.startswith(f"{saved} does not match the checksum in small.json")


def test_saved_json_holds_the_checksum_and_older_files_without_one_load(small, saved):
    meta_path = saved.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert len(meta[CHECKSUM]) == 64 and set(meta[CHECKSUM]) <= set("0123456789abcdef")
    del meta[CHECKSUM]
    meta_path.write_text(json.dumps(meta))
    x = torch.randn(3, 64)
    assert torch.equal(wb.load_shrunk(saved)(x), small.eval()(x))


def test_save_to_a_folder_or_a_missing_folder_says_so(small, tmp_path):
    assert _error(wb.save_shrunk, small, tmp_path).startswith(f"{tmp_path} is a folder")
    missing = tmp_path / "not here" / "small.pt"
    assert _error(wb.save_shrunk, small, missing).startswith(f"{missing.parent} does not exist")
    assert not (tmp_path / "not here").exists()


@pytest.mark.parametrize(
    "epsilons, why",
    [
        ({"fc9": {"eps": 1e-5}}, "it has an epsilon for 'fc9', no module there"),
        ({"fc1": {"eps": "small"}}, "a bad epsilon eps='small' for 'fc1'"),
        ({"fc1": {"momentum": 0.1}}, "a bad epsilon momentum=0.1 for 'fc1'"),
    ],
)
def test_a_bad_epsilon_in_the_json_is_named(saved, epsilons, why):
    meta_path = saved.with_suffix(".json")
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "epsilons": epsilons}))
    assert why in _error(wb.load_shrunk, saved)
