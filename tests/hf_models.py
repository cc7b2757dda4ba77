"""Tiny CLIP and SigLIP models with their tokenizers and processors, built offline.

Random weights from a config, a word-level vocabulary of a few dozen words, the slow
(Pillow) image processor; everything written with ``save_pretrained`` into a folder that
``transformers`` and ``geoaware`` then load as they would a downloaded model.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

WORDS = " ".join(
    [
        "a photo of the city street beach forest mountain desert snow river harbour market",
        "church temple bridge field road house tower park lake sea sky night day red green",
        "blue cat dog bird tree car boat people from above satellite image aerial view",
    ]
).split()


def _tokenizer(transformers: ModuleType, max_len: int) -> tuple[PreTrainedTokenizerFast, int]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    special = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(special + sorted(set(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_len,
    ), len(vocab)


def build_tiny(folder: Path, kind: str, *, side: int = 32, seed: int = 0) -> Path:
    """Write a tiny ``kind`` ("clip" or "siglip") model folder; return it."""
    import torch
    import transformers

    torch.manual_seed(seed)
    max_len = 16
    tokenizer, vocab = _tokenizer(transformers, max_len)
    text = dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=vocab,
        max_position_embeddings=max_len,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=side,
        patch_size=8,
    )
    config: transformers.PreTrainedConfig
    model: transformers.PreTrainedModel
    processor: transformers.BaseImageProcessor
    if kind == "clip":
        config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
        model = transformers.CLIPModel(config)
        processor = transformers.CLIPImageProcessorPil(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        )
    elif kind == "siglip":
        config = transformers.SiglipConfig(text_config=text, vision_config=vision)
        model = transformers.SiglipModel(config)
        processor = transformers.SiglipImageProcessorPil(size={"height": side, "width": side})
    else:
        raise ValueError(kind)
    folder.mkdir(parents=True, exist_ok=True)
    model.train(False)  # eval mode; PreTrainedModel.eval() is unannotated
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
