"""Decoder backbones (tiny GPT-2 from a local directory), padding invariance, multi-process (DDP) training."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from service.reward import load_reward_model, score_texts, train_reward_model
from service.reward.modeling import encode_texts

from .conftest import WORDS, needs_minilm, synthetic_pairs, tiny_config


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """GPT2Config(n_embd=32, n_layer=2) with a byte-level BPE trained on the fly; pad == eos on purpose."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("gpt2")
    corpus = [" ".join(WORDS) + " question tell me about a helpful harmful reply"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    eos = tok.eos_token_id
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                     bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(0)
    GPT2Model(cfg).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def test_decoder_reads_last_real_token_and_learns(tmp_path, tiny_gpt2_dir, learnable) -> None:
    train, ev = learnable
    cfg = tiny_config(mode="full", backbone=str(tiny_gpt2_dir), epochs=3, learning_rate=3e-3, max_length=64)
    result = train_reward_model(cfg, train, ev, tmp_path)
    assert result.config["artifact"]["pooling"] == "last" and result.config["artifact"]["is_decoder"]
    model = load_reward_model(tmp_path)
    enc = encode_texts(model.tokenizer, ["hi"], ["a helpful reply"], 64, decoder=True)
    assert enc.ids[0][-1] == model.tokenizer.eos_token_id  # raw text got an EOS
    assert result.metrics["heldout_accuracy"] > 0.7


@pytest.mark.parametrize("backbone", ["tiny-bert", "gpt2"])
def test_reward_does_not_depend_on_batch_padding(tmp_path, tiny_gpt2_dir, backbone: str) -> None:
    """pad == eos for the GPT-2 tokenizer: the read-out must still sit on the last *real* token."""
    bb = str(tiny_gpt2_dir) if backbone == "gpt2" else backbone
    train = synthetic_pairs(16)
    train_reward_model(tiny_config(mode="frozen", backbone=bb, epochs=1), train, train, tmp_path)
    model = load_reward_model(tmp_path)
    prompts = ["tell me"] * 3
    responses = ["a reply", "a much much longer reply about apple river stone cloud paper lamp", "x"]
    together = score_texts(model, prompts, responses, batch_size=8)
    alone = np.array([score_texts(model, [p], [r])[0] for p, r in zip(prompts, responses)])
    assert np.allclose(together, alone, atol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    train = synthetic_pairs(32, seed=1)
    cfg = tiny_config(mode="full", max_steps=3, learning_rate=1e-3, num_threads=1, device="cpu")
    try:
        train_reward_model(cfg, train, train.head(8), Path(out))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_on_gloo(tmp_path) -> None:
    """The torchrun path: 2 ranks on Gloo, rank 0 saves, gradients are averaged so ranks stay in sync."""
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model = load_reward_model(tmp_path)
    assert (tmp_path / "metrics.json").exists()
    import json

    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["artifact"]["world_size"] == 2
    assert np.isfinite(score_texts(model, ["p"], ["r"])).all()


@needs_minilm
def test_minilm_frozen_tiny_run(tmp_path) -> None:
    train = synthetic_pairs(24)
    cfg = tiny_config(mode="frozen", backbone="minilm", epochs=20, learning_rate=1e-2, max_length=32,
                      cache_dir=tmp_path / "cache")
    result = train_reward_model(cfg, train, synthetic_pairs(16, seed=5), tmp_path / "m")
    assert result.metrics["heldout_accuracy"] > 0.8
    assert not result.config["artifact"]["backbone_stored"]  # MiniLM by reference, not a 90 MB copy
    model = load_reward_model(tmp_path / "m")
    assert score_texts(model, ["q"], ["a helpful reply"]).shape == (1,)

