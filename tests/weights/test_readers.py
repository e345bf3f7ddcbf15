"""Checkpoint readers: safetensors, and .pth files read without running their pickle's code."""

import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.errors import InvalidArgumentError
from kerascnn.weights import read_checkpoint


class Planted:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def planted_pth(path, marker, layout):
    """A .pth whose pickle holds, beside a tensor-like entry, a call of os.system."""
    payload = pickle.dumps({"conv1.weight": Planted(marker)}, protocol=2)
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", payload)
            archive.writestr("archive/version", "3\n")
    else:  # the pre-1.6 stream starts with a pickle too
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("layout", ["zip", "stream"])
def test_a_pth_naming_anything_but_tensors_is_refused_and_nothing_runs(tmp_path, layout):
    marker = tmp_path / "ran"
    path = planted_pth(tmp_path / "planted.pth", marker, layout)
    with pytest.raises(InvalidArgumentError, match="posix.system|os.system") as excinfo:
        read_checkpoint(path)
    assert "nothing in it was run" in str(excinfo.value)
    assert not marker.exists()


def test_convert_refuses_a_planted_pth_with_one_error_line_and_writes_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = planted_pth(tmp_path / "planted.pth", marker, "zip")
    out = tmp_path / "out.weights.h5"
    result = CliRunner().invoke(
        main, ["convert", str(path), "--model", "resnet18", "--out", str(out)]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "refused" in lines[0]
    assert not marker.exists() and not out.exists()


def test_safetensors_are_read_as_written(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {
        "conv1.weight": rng.normal(size=(4, 3, 3, 3)).astype("float32"),
        "bn1.num_batches_tracked": np.array(7, dtype="int64"),
    }
    save_file(tensors, str(tmp_path / "model.safetensors"))
    read = read_checkpoint(tmp_path / "model.safetensors")
    assert read.keys() == tensors.keys()
    for key, value in tensors.items():
        np.testing.assert_array_equal(read[key], value)


def test_a_file_that_is_no_checkpoint_is_one_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(InvalidArgumentError, match="not a PyTorch checkpoint"):
        read_checkpoint(path)
    with pytest.raises(InvalidArgumentError, match="must be a"):
        read_checkpoint(_touch(tmp_path / "model.ckpt"))


def _touch(path):
    path.write_bytes(b"")
    return path


def test_pth_files_read_without_torch_equal_what_torch_saved(tmp_path):
    """Both layouts of torch.save (zip, and the pre-1.6 stream torchvision's older files use),
    with a half-precision, a bfloat16 and a non-contiguous (transposed) tensor."""
    sys.modules.setdefault("triton", None)  # crashes beside TensorFlow; torch needs it not
    torch = pytest.importorskip("torch", reason="torch writes the reference checkpoints")
    state = {
        "a.weight": torch.randn(5, 3, 2, 2),
        "b.weight": torch.randn(4, 6).t(),  # strides (1, 6)
        "c.half": torch.randn(7).half(),
        "d.bfloat": torch.randn(3).bfloat16(),
        "e.num_batches_tracked": torch.tensor(3),
        "f.view": torch.arange(20.0)[5:15],  # a storage offset
    }
    for layout, zipped in (("zip", True), ("stream", False)):
        path = tmp_path / f"{layout}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=zipped)
        read = read_checkpoint(path)
        assert read.keys() == state.keys()
        for key, tensor in state.items():
            np.testing.assert_array_equal(
                read[key],
                tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy(),
            )
