"""Small random-weight Wav2Vec2 and CLIP models saved to a folder, for tests and benchmarks.

No Wav2Vec2 or CLIP weights are available offline, yet their loading, preprocessing and
pooling paths must run somewhere; these folders have the same layout as the hub checkpoints
(config, weights, preprocessor / tokenizer files), only with random weights and a word-level
vocabulary.
"""
from __future__ import annotations

from pathlib import Path

CLIP_SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def save_random_wav2vec2(
    folder: str | Path,
    *,
    hidden_size: int = 32,  # transformer width (768 in wav2vec2-base)
    layers: int = 2,  # transformer layers (12 in wav2vec2-base)
    heads: int = 2,
    conv_dim: int = 32,  # channels of the seven convolutions (512 in wav2vec2-base)
    full_size: bool = False,  # True: wav2vec2-base sizes (Wav2Vec2Config defaults), other sizes ignored
    feat_extract_norm: str = "group",  # "group" as in wav2vec2-base, "layer" as in wav2vec2-large-lv60
    conv_bias: bool = False,  # True as in wav2vec2-large-lv60
    normalize: bool | None = True,  # preprocessor do_normalize; None: write no preprocessor_config.json
    seed: int = 0,
) -> Path:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    front = dict(feat_extract_norm=feat_extract_norm, conv_bias=conv_bias)
    if full_size:
        config = Wav2Vec2Config(**front)
    else:
        config = Wav2Vec2Config(
            hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=2 * hidden_size, conv_dim=(conv_dim,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, **front,
        )
    torch.manual_seed(seed)
    folder = Path(folder)
    Wav2Vec2Model(config).eval().save_pretrained(folder)
    if normalize is not None:
        Wav2Vec2FeatureExtractor(do_normalize=normalize, return_attention_mask=False).save_pretrained(folder)
    return folder


def word_clip_tokenizer(words):
    """A working CLIPTokenizer whose vocabulary spells each of ``words`` as one token.

    Letters a-z (alone and word-final) are in the vocabulary too, so any lower-case text
    tokenizes; merges build each word left to right, the way CLIP's BPE merges build its words.
    """
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {tok: i for i, tok in enumerate(CLIP_SPECIALS)}
    for piece in list(letters) + [c + "</w>" for c in letters]:
        vocab[piece] = len(vocab)
    merges = []
    for word in sorted({w.lower() for w in words}):
        if not word.isalpha() or not word.isascii() or len(word) < 2:
            continue
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        left = parts[0]
        for right in parts[1:]:
            if (left, right) not in merges:
                merges.append((left, right))
            left = left + right
            vocab.setdefault(left, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def save_random_clip(
    folder: str | Path,
    words,  # vocabulary of the word-level tokenizer
    *,
    hidden_size: int = 32,  # text width (512 in CLIP ViT-B/32)
    layers: int = 2,  # text layers (12 in ViT-B/32)
    heads: int = 2,
    projection_dim: int = 16,  # joint embedding size (512 in ViT-B/32)
    full_size: bool = False,  # True: ViT-B/32 text sizes, other sizes ignored
    seed: int = 0,
) -> Path:
    """A full CLIPModel (tiny vision tower) and its tokenizer, laid out like a hub checkpoint."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    tokenizer = word_clip_tokenizer(words)
    ids = {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}  # as in CLIP_SPECIALS
    if full_size:
        text = dict(vocab_size=49408, **ids)
        projection_dim = 512
    else:
        text = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                    num_hidden_layers=layers, num_attention_heads=heads, **ids)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=16)
    torch.manual_seed(seed)
    folder = Path(folder)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)).eval() \
        .save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
