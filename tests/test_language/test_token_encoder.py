"""TokenTextEncoder: layer-by-layer equals the full model, masks, truncation, freezing, missing models/language."""
import pytest
import torch

from asearch.errors import ConfigError, ModelNotFoundError
from asearch.language import TextEncoder, pool_tokens
from asearch.language.tokens import TokenTextEncoder, additive_mask, prepare_texts, zero_missing

TEXTS = ["a red car", "a small black bird flying over the green tree", ""]


@pytest.fixture(scope="module")
def minilm():
    """The packaged MiniLM as a frozen token encoder, loaded once for this module."""
    torch.manual_seed(0)
    return TokenTextEncoder(max_length=30)


def test_layer_by_layer_equals_hf_forward(minilm):
    ids, mask = minilm.tokenize(TEXTS)
    assert minilm.width == 384 and minilm.layers == 6 and minilm.model_id == "all-MiniLM-L6-v2"
    with torch.no_grad():
        ref = minilm.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        hidden = minilm.embed(ids)
        for i in range(minilm.layers):
            hidden = minilm.layer(i, hidden, mask)
        staged = minilm.run_layers(minilm.run_layers(minilm.embed(ids), mask, 0, 1), mask, 1)
        tokens, out_mask = minilm(ids, mask)
        additive = minilm.embed(ids)  # the fallback mask form (meta device, old transformers) gives the same
        for i in range(minilm.layers):
            additive = minilm.layer(i, additive, mask, bias=additive_mask(mask))
    assert hidden.shape == (3, ids.shape[1], 384)
    assert torch.allclose(hidden, ref, atol=1e-5) and torch.allclose(staged, ref, atol=1e-5)
    assert torch.allclose(tokens, ref, atol=1e-5) and torch.equal(out_mask, mask)
    assert torch.allclose(additive[mask], ref[mask], atol=1e-5)


def test_mask_marks_padding_and_empty_text_is_cls_sep(minilm):
    ids, mask = minilm.tokenize(TEXTS)
    tok = minilm.tokenizer
    assert mask.dtype == torch.bool and mask[0].sum() == 5 and mask[1].all() and mask[2].sum() == 2
    assert ids[0, 0] == tok.cls_token_id and ids[0, 4] == tok.sep_token_id
    assert (ids[0, 5:] == tok.pad_token_id).all() and not mask[0, 5:].any()
    assert ids[2, :2].tolist() == [tok.cls_token_id, tok.sep_token_id]
    ids, mask = minilm.tokenize(["a red car"], pad_to_max=True)
    assert ids.shape == (1, 30) and mask.sum() == 5


def test_truncation_keeps_sep_last(minilm):
    long = " ".join(["car"] * 50)
    ids, mask = minilm.tokenize([long, "a red car"])
    assert ids.shape == (2, 30) and mask[0].all()
    assert ids[0, -1] == minilm.tokenizer.sep_token_id and ids[0, 0] == minilm.tokenizer.cls_token_id
    ids, _ = minilm.tokenize([long], max_length=8)
    assert ids.shape == (1, 8) and ids[0, -1] == minilm.tokenizer.sep_token_id


def test_frozen_no_grads_deterministic_and_eval_under_train(minilm):
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert minilm.training and not minilm.model.training  # dropout off while frozen
    a, _ = minilm.encode(TEXTS)
    b, _ = minilm.encode(TEXTS)
    assert torch.equal(a, b) and not a.requires_grad
    # gradients still flow through the frozen layers to a tracker's modified hidden states
    ids, mask = minilm.tokenize(TEXTS[:1])
    h = minilm.embed(ids).detach().requires_grad_(True)
    minilm.layer(0, h, mask).sum().backward()
    assert h.grad is not None and all(p.grad is None for p in minilm.parameters())
    minilm.eval()


def test_fine_tune_trains_with_dropout():
    enc = TokenTextEncoder(trainable=True)
    assert all(p.requires_grad for p in enc.parameters()) and enc.model.pooler is None
    enc.train()
    assert enc.model.training
    tokens, _ = enc.encode(["a red car"])
    tokens.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None
    enc.set_trainable(False)
    rand = TokenTextEncoder(pretrained=False)  # the MiniLM architecture with random weights
    assert rand.width == 384 and not torch.equal(rand.model.embeddings.word_embeddings.weight,
                                                 enc.model.embeddings.word_embeddings.weight)
    assert not enc.model.training and not any(p.requires_grad for p in enc.parameters())


def test_pooled_encoder_is_mean_of_these_tokens(minilm):
    """The pooled TextEncoder is the masked mean over the same model's last hidden state (checked, then asserted)."""
    pooled = TextEncoder(device="cpu").encode_sentences(TEXTS[:2])
    with torch.no_grad():
        tokens, mask = minilm.encode(TEXTS[:2])
    assert torch.allclose(pool_tokens(tokens, mask), pooled, atol=1e-5)


def test_missing_language_follows_language_missing(minilm):
    texts, has_text, use_template = prepare_texts(["a red car", None, "  ", None], [True, False, True, False],
                                                  missing="zero", strategies=[None, "attribute", None, "template"])
    assert texts == ["a red car", "none, object, none, none", "", ""]
    assert has_text.tolist() == [True, True, False, False] and use_template.tolist() == [False, False, False, True]
    with torch.no_grad():
        tokens, mask = minilm.encode(texts)
    zeroed = zero_missing(tokens, has_text)
    assert torch.equal(zeroed[:2], tokens[:2]) and not zeroed[2:].any() and mask[2:].sum(1).tolist() == [2, 2]


def test_missing_encoder_names_the_key(tmp_path):
    with pytest.raises(ModelNotFoundError, match="language.encoder") as err:
        TokenTextEncoder(str(tmp_path / "bert-base-uncased"))
    assert str(tmp_path / "bert-base-uncased") in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        TokenTextEncoder(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="not available offline.*language.encoder"):
        TokenTextEncoder("no-such-org-asearch/no-such-model")


def test_bert_base_shapes_on_meta_without_files():
    from transformers import BertConfig

    with torch.device("meta"):
        enc = TokenTextEncoder(config=BertConfig(), trainable=True)
        ids, mask = enc.tokenize(["a red car"], device="meta")
        hidden = enc.layer(3, enc.embed(ids), mask)
    assert enc.width == 768 and enc.layers == 12 and hidden.shape == (1, 5, 768)
    assert sum(p.numel() for p in enc.parameters()) == 108_891_648  # BERT-base without its pooler


def test_local_bert_dir_loads_its_weights(tiny_bert_dir):
    from transformers import BertModel

    enc = TokenTextEncoder(str(tiny_bert_dir), trainable=True)
    ref = BertModel.from_pretrained(tiny_bert_dir).eval()
    assert enc.width == 32 and enc.layers == 2 and enc.model_id == str(tiny_bert_dir.resolve())
    assert torch.equal(enc.model.embeddings.word_embeddings.weight, ref.embeddings.word_embeddings.weight)
    enc.eval()
    ids, mask = enc.tokenize(TEXTS)
    with torch.no_grad():
        tokens, _ = enc(ids, mask)
        assert torch.allclose(tokens, ref(input_ids=ids, attention_mask=mask.long()).last_hidden_state, atol=1e-5)


def test_gpt2_is_rejected_with_the_key(tiny_gpt2_dir):
    with pytest.raises(ConfigError, match="language.encoder.*\\[CLS\\], \\[SEP\\]"):
        TokenTextEncoder(str(tiny_gpt2_dir))
