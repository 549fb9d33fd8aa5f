"""Tiny random-init chat LLM and Florence-2 captioner, built locally for the enhancer tests."""

from __future__ import annotations

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "a red fox runs through deep snow at dawn, the camera tracks it slowly",
    "golden light, soft shadows, cinematic wide shot of a quiet harbour",
    "Describe in detail what is shown in the image.",
    "You are a film director writing prompts for a text-to-video model.",
]


def _bpe_tokenizer(special_tokens: list[str], vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>" if "<unk>" in special_tokens else None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def build_tiny_llm(path, *, mute: bool = False):
    """A tiny random Llama chat model. ``mute``: zeroed final norm -> all logits 0 -> greedy picks id 0 = EOS."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = _bpe_tokenizer(["<|im_end|>", "<|im_start|>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token="<|im_start|>"
    )
    tokenizer.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=raw.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        eos_token_id=0, pad_token_id=0, bos_token_id=1,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    if mute:
        with torch.no_grad():
            model.model.norm.weight.zero_()
    else:
        model.generation_config.suppress_tokens = [0, 1]  # never stop early: output is never empty
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_florence2(path, *, mute: bool = False):
    """A tiny random Florence-2 with a real Florence2Processor (BPE tokenizer + CLIP image processor)."""
    import torch
    from transformers import (
        BartTokenizer,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    raw = _bpe_tokenizer(["<s>", "<pad>", "</s>", "<unk>", "<image>"])
    tokenizer = BartTokenizer(
        tokenizer_object=raw, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    # 64x64 input, total stride 32 -> 2x2 patches + 1 pooled token = 5 image tokens.
    image_processor = CLIPImageProcessorPil(
        size={"height": 64, "width": 64}, do_center_crop=False, image_seq_length=5
    )
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer)
    config = Florence2Config(
        text_config=dict(
            vocab_size=raw.get_vocab_size(), d_model=32, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
            max_position_embeddings=256, bos_token_id=0, pad_token_id=1, eos_token_id=2,
            decoder_start_token_id=2, forced_eos_token_id=2,
        ),
        vision_config=dict(
            embed_dim=[8, 16, 16, 32], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 2], num_groups=[1, 1, 1, 2],
            window_size=2, projection_dim=32, max_position_embeddings=8, max_temporal_embeddings=4,
        ),
        image_token_id=tokenizer.image_token_id,
    )
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(config).eval()
    if mute:
        model.generation_config.forced_bos_token_id = 2  # first token EOS: an empty caption
    else:  # a non-empty caption: no early EOS, no tokens that decode to nothing
        model.generation_config.min_new_tokens = 8
        model.generation_config.suppress_tokens = [tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "<unk>", "<image>")]
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
