"""LanguageFeaturizer with a counting fake encoder: pooling, attribute concatenation, strategies, caching."""
import hashlib

import pytest
import torch

from asearch.errors import CheckpointError, ConfigError, DataError
from asearch.language import LanguageFeaturizer, cache_key, pool_tokens


class FakeEncoder:
    """Tokens = [CLS] + one per word + [SEP]; word token feature = (len(word), ord(word[0]), 1), CLS/SEP = 0."""

    model_id = "fake"
    dim = 3

    def __init__(self):
        self.calls = 0
        self.seen = []

    def encode_tokens(self, texts):
        self.calls += 1
        self.seen.extend(texts)
        rows = [[[0.0, 0.0, 0.0]] + [[float(len(w)), float(ord(w[0])), 1.0] for w in t.split()] + [[0.0, 0.0, 0.0]]
                for t in texts]
        length = max(len(r) for r in rows)
        feats = torch.full((len(texts), length, 3), 99.0)  # padding value that must not leak into the mean
        mask = torch.zeros(len(texts), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            feats[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = True
        return feats, mask


class BrokenEncoder(FakeEncoder):
    def encode_tokens(self, texts):
        raise AssertionError(f"the model must not run on a cache hit, got {texts}")


def word(w):
    """Pooled feature of '[CLS] w [SEP]' under the fake encoder: mean of 3 tokens."""
    return torch.tensor([len(w), ord(w[0]), 1.0]) / 3


def test_pool_tokens_hand_computed_with_padding():
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                          [[2.0, 0.0], [4.0, 2.0], [100.0, 100.0]],
                          [[7.0, 7.0], [7.0, 7.0], [7.0, 7.0]]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    out = pool_tokens(feats, mask)
    # row 0: (1+3+5)/3, (2+4+6)/3; row 1: padding excluded -> (2+4)/2, (0+2)/2 (not (2+4+100)/3); row 2: no token
    assert torch.equal(out, torch.tensor([[3.0, 4.0], [3.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="B×L"):
        pool_tokens(feats, mask[:, :2])


def test_sentence_mode_masks_padding_and_dim():
    enc = FakeEncoder()
    f = LanguageFeaturizer(enc, mode="sentence")
    assert f.dim == 3
    vec, tmpl = f(["a red car", "dog"], [None, None], [True, True])
    # "a red car": tokens 0, (1,97,1), (3,114,1), (3,99,1), 0 -> sum (7,310,3) / 5
    assert torch.allclose(vec[0], torch.tensor([7.0, 310.0, 3.0]) / 5)
    assert torch.allclose(vec[1], word("dog"))  # padded to length 5 in the batch: the 99s do not leak in
    assert vec.dtype == torch.float32 and tmpl.tolist() == [False, False]


def test_attribute_concatenation_shape_order_and_none_fill():
    enc = FakeEncoder()
    f = LanguageFeaturizer(enc, mode="attribute")
    assert f.dim == 12
    vec, _ = f(["ignored sentence", ""], [["cat", "animal", "white", "left"], ["car", None, "  "]], [True, True])
    assert vec.shape == (2, 12)
    expected0 = torch.cat([word("cat"), word("animal"), word("white"), word("left")])
    expected1 = torch.cat([word("car"), word("none"), word("none"), word("none")])
    assert torch.allclose(vec[0], expected0) and torch.allclose(vec[1], expected1)
    assert "ignored sentence" not in enc.seen
    # the dictionary: each distinct word encoded once ("none" once for three slots)
    assert sorted(enc.seen) == sorted(["cat", "animal", "white", "left", "car", "none"])
    with pytest.raises(DataError, match="at most 4 attribute words"):
        f([""], [["a", "b", "c", "d", "e"]], [True])


def test_missing_language_strategies_sentence_mode():
    enc = FakeEncoder()
    f = LanguageFeaturizer(enc, mode="sentence", missing="attribute")
    vec, tmpl = f(["", "", "", "   "], [["person", "object", "none", "none"], None, None, None],
                  [False, False, False, True],
                  strategies=[None, "zero", "template", None])
    # Alg. 1 line 14: the words joined as the sentence "person, object, none, none"
    assert "person, object, none, none" in enc.seen
    assert torch.allclose(vec[0], pool_tokens(*FakeEncoder().encode_tokens(["person, object, none, none"]))[0])
    assert torch.equal(vec[1], torch.zeros(3)) and torch.equal(vec[2], torch.zeros(3))
    assert tmpl.tolist() == [False, False, True, False]
    # has_language but blank sentence -> missing strategy ("attribute" with no words -> Alg. 1 default)
    assert "none, object, none, none" in enc.seen
    with pytest.raises(ConfigError, match="language_strategy"):
        f([""], [None], [False], strategies=["caption"])


def test_missing_language_strategies_attribute_mode():
    f = LanguageFeaturizer(FakeEncoder(), mode="attribute", missing="template")
    vec, tmpl = f(["", ""], [None, ["bird", "object", "none", "none"]], [False, False],
                  strategies=[None, "attribute"])
    assert tmpl.tolist() == [True, False] and torch.equal(vec[0], torch.zeros(12))
    assert torch.allclose(vec[1], torch.cat([word("bird"), word("object"), word("none"), word("none")]))


def test_config_and_length_errors():
    with pytest.raises(ConfigError, match="field: mode"):
        LanguageFeaturizer(FakeEncoder(), mode="words")
    with pytest.raises(ConfigError, match="field: missing"):
        LanguageFeaturizer(FakeEncoder(), missing="nothing")
    with pytest.raises(DataError, match="differ in length"):
        LanguageFeaturizer(FakeEncoder())(["a"], [None, None], [True])


def test_memory_cache_hit_does_not_call_model():
    enc = FakeEncoder()
    f = LanguageFeaturizer(enc, mode="sentence")
    first, _ = f(["a red car", "a red car", "dog"], [None] * 3, [True] * 3)
    assert enc.calls == 2 and enc.seen == ["a red car", "dog"]  # duplicates encoded once, each text alone
    second, _ = f(["dog", "a red car"], [None] * 2, [True] * 2)
    assert enc.calls == 2
    assert torch.equal(second[0], first[2]) and torch.equal(second[1], first[0])


def test_batch_size_groups_the_texts_of_one_encoder_call():
    enc = FakeEncoder()
    LanguageFeaturizer(enc, batch_size=2).text_features(["a", "b", "c"])
    assert enc.calls == 2 and enc.seen == ["a", "b", "c"]


def test_disk_cache_new_featurizer_loads_without_model(tmp_path):
    enc = FakeEncoder()
    f = LanguageFeaturizer(enc, mode="attribute", cache_dir=tmp_path)
    first, _ = f([""], [["cat", "animal", "white", "left"]], [True])
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted(hashlib.sha256(cache_key("fake", "attribute", w).encode()).hexdigest() + ".pt"
                      for w in ["cat", "animal", "white", "left"])
    assert names == expected
    g = LanguageFeaturizer(BrokenEncoder(), mode="attribute", cache_dir=tmp_path)
    again, _ = g([""], [["cat", "animal", "white", "left"]], [True])
    assert torch.equal(again, first) and g.cache.disk_hits == 4
    # another mode is another key: the sentence cache does not answer attribute-word queries
    h = LanguageFeaturizer(BrokenEncoder(), mode="sentence", cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="must not run"):
        h(["cat"], [None], [True])


def test_corrupt_cache_file_is_reported(tmp_path):
    f = LanguageFeaturizer(FakeEncoder(), cache_dir=tmp_path)
    path = f.cache.path_for(cache_key("fake", "sentence", "dog"))
    path.write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="delete it to recompute") as err:
        f(["dog"], [None], [True])
    assert path.name in str(err.value)
