"""A tiny random causal LM with a real byte-level BPE tokenizer, built from a config in seconds.

Used by the tests in place of a pretrained model: same code paths (HF folder, tokenizer, PEFT),
multi-token words in every script, deterministic weights.
"""

from __future__ import annotations

from pathlib import Path

# Enough text in each script that the tokenizer learns merges but keeps words multi-token.
CORPUS = [
    "Question: Which continent is France in?\nA) Europe\nB) Asia\nC) Africa\nD) Oceania\nAnswer: A",
    "Question: What is seven plus five?\nAnswer: twelve",
    "Frage: Auf welchem Kontinent liegt Frankreich? Antwort: Europa",
    "Pregunta: ¿En qué continente está Francia? Respuesta: Europa",
    "سؤال: في أي قارة تقع فرنسا؟ الجواب: أوروبا",
    "प्रश्न: फ्रांस किस महाद्वीप में है? उत्तर: यूरोप",
    "问题：法国位于哪个大洲？答案：欧洲",
    "প্রশ্ন: ফ্রান্স কোন মহাদেশে অবস্থিত? উত্তর: ইউরোপ",
] * 4


def build_tiny_model(
    folder: Path, arch: str = "llama", seed: int = 0, vocab_size: int = 320
) -> Path:
    """Write a tiny random model (``llama`` or ``gemma3``) and its tokenizer to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    tokenizer.save_pretrained(folder)

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    if arch == "llama":
        from transformers import LlamaConfig

        config = LlamaConfig(**common)
    elif arch == "gemma3":
        from transformers import Gemma3TextConfig

        config = Gemma3TextConfig(**common, head_dim=16, sliding_window=64)
    else:
        raise ValueError(f"unknown tiny arch {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    return folder
