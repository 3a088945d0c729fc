"""The README's "disk full while checkpointing" row: the error names the folder and the free space, the partial
checkpoint is removed, and the earlier checkpoints stay."""

import errno

import pytest
from accelerate import Accelerator

from hf_vqgen.training.checkpointing import list_checkpoints, save_checkpoint


def test_a_full_disk_during_a_checkpoint_names_the_folder_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    accelerator = Accelerator(cpu=True)
    (tmp_path / "checkpoint-1").mkdir()
    (tmp_path / "checkpoint-1" / "model.safetensors").write_bytes(b"earlier")

    def disk_full(folder):
        (tmp_path / ".partial-checkpoint-2" / "model.safetensors").parent.mkdir(exist_ok=True)
        (tmp_path / ".partial-checkpoint-2" / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(accelerator, "save_state", disk_full)
    with pytest.raises(OSError, match=f"checkpoint-2 into {tmp_path}.*MiB free there. Is the disk full"):
        save_checkpoint(accelerator, tmp_path, 2, total_limit=None)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-1"]
    assert not (tmp_path / ".partial-checkpoint-2").exists()
    assert (tmp_path / "checkpoint-1" / "model.safetensors").read_bytes() == b"earlier"
