"""Tiny text-encoder directories on disk, shared by the language tests (built once per module, random weights)."""
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory):
    """A random 1-layer GPT-2 with a small byte-level BPE tokenizer: no pad token, no [CLS]/[SEP]."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, GPT2TokenizerFast

    folder = tmp_path_factory.mktemp("tiny_gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["a red car on the road", "the black bird in the sky"], vocab_size=300,
                            min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False)
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                            bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=8, n_layer=1, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2Model(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A random 2-layer BERT (d = 32) with the packaged MiniLM's uncased WordPiece tokenizer: a local BERT dir."""
    from transformers import BertConfig, BertModel

    from asearch.language import default_model_dir, load_tokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder)
    load_tokenizer(str(default_model_dir())).save_pretrained(folder)
    return folder
