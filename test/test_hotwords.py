"""Hotwords: list files (global and per utterance), the two-edit neighbour index, proposals of a
listed phrase where the rows fit it, the bonus, and decoding turned toward a listed word."""
import numpy as np
import pytest

from tasu.expand import LexiconNeighbours
from tasu.hotwords import Biasing, HotwordError, read_hotwords, read_utt_hotwords, unknown_utterances


def one_hot_rows(ids, V=16, p=0.9):
    rows = np.full((len(ids), V), (1 - p) / (V - 1))
    rows[np.arange(len(ids)), ids] = p
    return rows


WB = 15
# words -> units; "<wb>" between the words of a text, as the G2P writes it
WORDS = {"press": [1, 2, 3, 4], "pound": [5, 6, 7, 8], "round": [9, 6, 7, 8], "the": [10, 11],
         "voicemail": [12, 13, 14, 1, 2], "mail": [14, 1, 2], "voice": [12, 13], "nice": [9, 13],
         "x": [3], "ice": [13]}


def units_of(text):
    out = []
    for w in text.lower().strip(".,").split():
        out += ([WB] if out else []) + WORDS[w.strip(".,")]
    return out


def rows_of(text):
    return one_hot_rows(units_of(text))


def test_global_list_scores_comments_and_sherpa_suffix(tmp_path):
    f = tmp_path / "hot.txt"
    f.write_text("# IVR words\nvoicemail\npress  pound\t3.5\nextension :2.5\n\n  key pad  \n", encoding="utf-8")
    assert read_hotwords(f, 1.5) == {"voicemail": 1.5, "press pound": 3.5, "extension": 2.5, "key pad": 1.5}


@pytest.mark.parametrize("content, where, words", [
    (b"voicemail\npress\tthree\n", ":2:", "score 'three' is not a number"),
    (b"voicemail\npress :inf\n", ":2:", "not finite"),
    (b"ok\n\xff\xfe bad\n", ":2:", "not valid UTF-8"),
    (b"ok\n...\t2\n", ":2:", "has no word in it"),
    (b"# only a comment\n\n", ":", "no hotwords in it"),
])
def test_bad_global_lists_name_file_and_line(tmp_path, content, where, words):
    f = tmp_path / "hot.txt"
    f.write_bytes(content)
    with pytest.raises(HotwordError, match=rf"hot.txt{where}.*{words}"):
        read_hotwords(f, 1.5)
    with pytest.raises(HotwordError, match="missing.txt: cannot read"):
        read_hotwords(tmp_path / "missing.txt", 1.5)


def test_per_utterance_lists(tmp_path):
    f = tmp_path / "lists"
    f.write_text("u1 voicemail pound\nu2\nu3 mail\n", encoding="utf-8")
    lists = read_utt_hotwords(f, 2.0)
    assert lists == {"u1": {"voicemail": 2.0, "pound": 2.0}, "u2": {}, "u3": {"mail": 2.0}}
    assert unknown_utterances(lists, ["u1", "u2"]) == ["u3"]
    f.write_text("u1 voicemail\nu2 a\nu1 b\n", encoding="utf-8")
    with pytest.raises(HotwordError, match=r"lists:3: utterance 'u1' again \(first at line 1\)"):
        read_utt_hotwords(f, 2.0)


def test_two_edit_index_finds_what_one_edit_misses():
    prons = [("voicemail", [12, 13, 14, 1, 2])]
    reading = [12, 9, 14, 1, 3]   # two substitutions away
    assert LexiconNeighbours(prons).near(reading) == []
    assert LexiconNeighbours(prons, max_edits=2).near(reading) == [([12, 13, 14, 1, 2], ["voicemail"])]
    assert LexiconNeighbours(prons, max_edits=2).near([12, 13, 14, 1, 2, 4, 5, 6]) == []   # three away
    with pytest.raises(ValueError, match="max_edits must be 1 or 2"):
        LexiconNeighbours(prons, max_edits=3)


def test_bonus_counts_whole_words_of_each_listed_phrase():
    b = Biasing(units_of, {"press pound": 2.0, "mail": 1.0}, {"u9": {"voice": 4.0}}, wb=WB)
    assert b.bonus("u1", "Press pound, then press the pound.") == 4.0      # one whole match of two words
    assert b.bonus("u1", "voicemail") == 0.0                               # "mail" inside a word: no match
    assert b.bonus("u1", "mail the mail") == 2.0
    assert b.bonus("u9", "voice mail") == 5.0                              # its own list and the global one
    assert b.phrases("u9") == {"press pound": 2.0, "mail": 1.0, "voice": 4.0}


def test_a_listed_phrase_is_proposed_where_the_rows_fit_it():
    rows = rows_of("press pound")
    b = Biasing(units_of, {"press pound": 2.0}, wb=WB, insert_cost=2.0, delete_cost=5.0, margin=0.0)
    assert b.propose("u1", rows, "press round") == ["press pound"]       # one word of the phrase misread
    assert b.propose("u1", rows, "press pound") == []                    # already there
    # the rows of "nice round": "press pound" is far from them and is not proposed
    assert b.propose("u1", rows_of("nice round"), "nice round") == []
    # a listed word the answer split in two: "voice mail" -> "voicemail" (its rows, no <wb> row)
    v = Biasing(units_of, {"voicemail": 2.0}, wb=WB, margin=0.0)
    assert v.propose("u1", one_hot_rows(WORDS["voicemail"]), "nice mail") == ["voicemail"]
    # per-utterance lists bias their utterance only
    per = Biasing(units_of, {}, {"u2": {"pound": 2.0}}, wb=WB, margin=0.0)
    assert per.propose("u2", rows, "press round") == ["press pound"]
    assert per.propose("u1", rows, "press round") == []


def test_margin_lets_a_phrase_that_fits_a_little_worse_in():
    # the rows say "press round"; "pound" is one unit off: worse by the cost of that unit
    rows = rows_of("press round")
    tight = Biasing(units_of, {"pound": 2.0}, wb=WB, margin=0.0)
    loose = Biasing(units_of, {"pound": 2.0}, wb=WB, margin=8.0)
    assert tight.propose("u1", rows, "press round") == []
    assert loose.propose("u1", rows, "press round") == ["press pound"]


class _Tok:
    def __init__(self):
        self.vocab = []

    def __call__(self, text, add_special_tokens=False):
        for w in text.split():
            if w not in self.vocab:
                self.vocab.append(w)
        return {"input_ids": [self.vocab.index(w) for w in text.split()]}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(self.vocab[i] for i in ids)


class _LLM:
    """The beam answers "press round"; teacher forcing scores answers from a table."""
    def __init__(self, scores):
        self.tokenizer, self.scores = _Tok(), scores

    def generate_nbest(self, feats, num_beams, max_new_tokens, constraint, templates, guard):
        return [[(self.tokenizer("press round")["input_ids"], self.scores["press round"])] for _ in feats]

    def score_answers(self, feats, answers, templates=None):
        return [[self.scores[self.tokenizer.decode(ids)] for ids in ex] for ex in answers]


def test_hotwords_turn_an_answer_toward_a_listed_word_and_leave_others_alone():
    from tasu.decode import decode_posteriors
    from tasu.rescore import make_rescorer

    # the speech of u1 is "press pound", of u2 "press round"; the LLM prefers "round" by 1.5 nats
    items = [("u1", rows_of("press pound")), ("u2", rows_of("press round"))]
    model = _LLM({"press round": -2.0, "press pound": -3.5})
    rescorer = make_rescorer(units_of, 0.1, 2.0, 5.0, WB)
    assert decode_posteriors(model, items, rescorer=rescorer) == {"u1": "press round", "u2": "press round"}
    hot = Biasing(units_of, {"pound": 2.0}, wb=WB, margin=2.0)
    got = decode_posteriors(model, items, rescorer=rescorer, biasing=hot)
    assert got == {"u1": "press pound", "u2": "press round"}   # u2's rows do not say "pound": no change
    with pytest.raises(ValueError, match="acoustic_weight > 0"):
        decode_posteriors(model, items, biasing=hot)


def test_speech2text_reads_hotwords_and_needs_rescoring(tmp_path):
    from test_inference import s2t

    from tasu.config import DecodeConfig

    with pytest.raises(ValueError, match="hotwords act through the rescorer"):
        _s2t_with(tmp_path, acoustic_weight=0.0)
    f = tmp_path / "hot.txt"
    f.write_text("cat\t3\ndog\n", encoding="utf-8")
    x = _s2t_with(tmp_path, hotwords=f, acoustic_weight=1.0, num_beams=2)
    assert x.biasing.global_phrases == {"cat": 3.0, "dog": DecodeConfig().hotword_score}  # dog: the default
    y = _s2t_with(tmp_path, hotwords=["cat", "hot dog"], hotwords_per_utt={"0": ["cow"]}, acoustic_weight=1.0,
                  num_beams=2, hotword_score=1.0)
    assert y.biasing.phrases("0") == {"cat": 1.0, "hot dog": 1.0, "cow": 1.0}
    assert s2t().biasing is None


def _s2t_with(tmp_path, hotwords=("cat",), hotwords_per_utt=None, **decode):
    from test_inference import StandIn, Tok, tiny_model

    from tasu.config import DecodeConfig, TrainConfig
    from tasu.inference import Speech2Text
    from tasu.units import UnitInventory

    model, _ = tiny_model()
    model.tokenizer = Tok()
    enc = StandIn()
    return Speech2Text(model, TrainConfig(), UnitInventory(enc.inventory.units, "<blank>", "<wb>"),
                       DecodeConfig(max_new_tokens=4, **decode), encoder=enc, hotwords=hotwords,
                       hotwords_per_utt=hotwords_per_utt)
