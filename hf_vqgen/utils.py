"""Small helpers shared across the package."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shlex
import sys
from pathlib import Path

import torch
from huggingface_hub.utils import HFValidationError, validate_repo_id


def state_dict_digest(state_dict: dict[str, torch.Tensor], length: int = 16) -> str:
    """SHA-256 over names and raw bytes of every tensor: identifies a set of weights exactly."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:length]


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_weights_folder(folder: str | os.PathLike, allow_pickle: bool, what: str) -> None:
    """Refuse a missing folder, or one whose weights exist only as pickles (loading a pickle can run arbitrary
    code) unless `allow_pickle`. Callers also pass `use_safetensors=True` (or None when pickles are allowed: then
    safetensors are still preferred where both exist) to `from_pretrained`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{what}: {folder} is missing.")
    for weights in sorted(folder.glob("*.safetensors")):
        check_safetensors_file(weights)
    has_safetensors = any(folder.glob("*.safetensors"))
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not has_safetensors and pickles and not allow_pickle:
        raise ValueError(
            f"{what}: {folder} holds pickle weights only ({', '.join(pickles)}). Loading a pickle can run arbitrary "
            "code, so it is refused; convert the weights to safetensors, or pass allow_pickle=True if you trust them."
        )


def check_safetensors_file(path: str | os.PathLike) -> None:
    """Raise a `ValueError` naming `path` unless its header parses and the file holds every byte the header
    promises (a truncated download or an interrupted copy otherwise fails deep inside the loader)."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            header_length = int.from_bytes(f.read(8), "little")
            if size < 8 + header_length:
                raise ValueError("the header is cut off")
            header = json.loads(f.read(header_length))
        data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a valid safetensors file ({error}): re-download or re-save it.") from error
    if size < 8 + header_length + data_end:
        raise ValueError(
            f"{path} is truncated: {size} bytes, its header promises {8 + header_length + data_end}. Re-download or "
            "re-save it."
        )


def generator_device(generator: torch.Generator | None, device: torch.device | str) -> torch.device | str:
    """Where to draw random numbers: on the generator's device when one is given (so that a CPU generator seeds a
    run on an accelerator reproducibly, as `diffusers.utils.torch_utils.randn_tensor` does), else on `device`."""
    return generator.device if generator is not None else device


def seeded_rand(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator_device(generator, device)).to(device)


def seeded_randint(high: int, shape, generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=generator, device=generator_device(generator, device)).to(device)


def seeded_multinomial(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per row of `probs` (N, K) -> (N,)."""
    source = probs.to(generator_device(generator, probs.device))
    return torch.multinomial(source, 1, generator=generator).squeeze(-1).to(probs.device)


def portable_path(name_or_path: str | os.PathLike | None, root: str | os.PathLike | None = None) -> str | None:
    """How a results file or a card names a model or a file: a local path relative to `root` (default: the current
    folder) when it lies inside it, else its last component (never this machine's absolute path); anything that is
    not a local path (a Hub repo id, "inception") is returned as it is."""
    if name_or_path is None:
        return None
    path = Path(name_or_path).expanduser()
    if not path.exists() and not path.is_absolute():
        return str(name_or_path)
    root = Path(root or os.getcwd()).resolve()
    resolved = path.resolve()
    if resolved == root or root in resolved.parents:
        return resolved.relative_to(root).as_posix() or "."
    return resolved.name


# memory


def _proc_status_kib(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark to its current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """The process's RSS high-water mark in MiB (since the last `reset_peak_rss`, where that worked)."""
    kib = _proc_status_kib("VmHWM")
    if kib is None:  # no /proc: getrusage's mark (bytes on macOS, KiB elsewhere)
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
    return kib / 1024


def rss_mib() -> float | None:
    kib = _proc_status_kib("VmRSS")
    return None if kib is None else kib / 1024


def reject_missing_folder(name_or_path: str, what: str = "an image folder", hub_kind: str = "dataset") -> None:
    """
    Raise a `ValueError` if `name_or_path`, which is not an existing folder, reads as a local path rather than a Hub
    dataset id (`name` or `owner/name`): written as a path (`/`, `./`, `../`, `~`, a backslash, more than one `/`),
    named like an image file, not a valid repo id, or `dir/name` where `dir` is an existing local folder.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        raise ValueError(f"{name_or_path!r} is a file; expected {what} or a Hub {hub_kind} id.")
    reason = None
    if name_or_path.startswith(("/", "./", "../", "~")) or name_or_path in (".", "..") or "\\" in name_or_path:
        reason = "it is written as a local path"
    elif name_or_path.count("/") > 1 or name_or_path.endswith("/"):
        reason = f"a Hub {hub_kind} id is 'name' or 'owner/name'"
    elif os.path.splitext(name_or_path)[1].lower() in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"):
        reason = "it is named like an image file"
    elif "/" in name_or_path and path.parent.is_dir():
        reason = f"the local folder {str(path.parent)!r} exists"
    else:
        try:
            validate_repo_id(name_or_path)
        except HFValidationError as error:
            reason = f"nor is it a Hub {hub_kind} id: {error}"
    if reason:
        raise ValueError(
            f"The folder {name_or_path!r} does not exist ({reason}); pass an existing {what.split(' ', 1)[1]} or a Hub "
            f"{hub_kind} id."
        )


def command_line(argv: list[str] | None = None, root: str | os.PathLike | None = None) -> str:
    """The command that produced a result, as one shell line with portable paths (`python examples/x.py --a b`)."""
    argv = sys.argv if argv is None else argv
    parts = ["python", portable_path(argv[0], root)] + [
        portable_path(arg, root) if Path(arg).is_absolute() else arg for arg in argv[1:]
    ]
    return shlex.join(parts)


def parse_settings(pairs: list[str], what: str = "settings") -> dict:
    """`["temperature=0.9", "top_k=100", "guidance_schedule=linear"]` -> {"temperature": 0.9, "top_k": 100,
    "guidance_schedule": "linear"}: numbers where the text is one (ints stay ints), else the word."""
    settings = {}
    for item in pairs:
        name, _, text = (part.strip() for part in item.partition("="))
        if not name or not text:
            raise ValueError(f"{what}: {item!r} is not name=value.")
        for kind in (int, float, str):
            try:
                settings[name] = kind(text)
                break
            except ValueError:
                continue
    return settings
