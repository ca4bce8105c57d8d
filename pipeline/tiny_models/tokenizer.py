"""A small tokenizer trained here, for the tiny random text encoders (Wan's UMT5, MAGI-1's T5):
the real tokenizers are downloads, and tests and the demo must run without any."""

from __future__ import annotations

_CORPUS = (
    "a the of and in on with to from into onto over under by at for is are "
    "ball cube sphere block domino pendulum water liquid glass cup table floor wall "
    "rolls falls drops slides bounces pours spins swings collides hits breaks moves "
    "red green blue yellow white black wooden metal rubber plastic heavy light small large "
    "camera static view scene video slow motion left right up down forward backward "
    "bright tones overexposed blurred details subtitles style works paintings images "
    "overall gray worst quality low jpeg compression residue ugly incomplete extra fingers "
    "poorly drawn hands faces deformed disfigured misshapen limbs fused still picture "
    "messy background three legs many people walking backwards"
)


def build_local_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on a small built-in corpus, T5-style
    special tokens (``<pad>`` id 0, ``</s>`` id 1, ``<unk>`` id 2) and an
    ``</s>`` appended to every sequence."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    eos_id = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
        padding_side="right",
    )
