"""MS MARCO-shaped files at full size, generated in blocks from a seed (for the full-size study on one machine).

:mod:`ftstudy.synthetic` writes a small, hand-templated look-alike for the embedded default. This module writes
files with the real data set's names, formats and sizes (8,841,823 passages, 808,731 training queries ...), so
that the workflow's full-scale rules (prepare, BM25, encoding, mining, training, retrieval) can be run and timed
end to end on one machine without the real data. The text is invented: words are pronounceable letter strings
(and a list of common English words), so no model is expected to do well on it; what matters is the shape:

- ``collection.tsv``: ``pid \\t passage``, pids 0..n-1; passage lengths log-normal like MS MARCO's (mean ~56
  words; parameters fitted on the real slice in ``../shared``); words from a Zipfian vocabulary (common English
  words, then 2,000,000 invented words at full size, scaled with the collection), with sentences, capitals,
  commas and full stops.
- ``queries.train.tsv`` / ``queries.dev.small.tsv`` / ``msmarco-test20{19,20}-queries.tsv``: ``qid \\t query``.
- ``qrels.train.tsv`` / ``qrels.dev.small.tsv``: ``qid \\t 0 \\t pid \\t 1`` (some queries have 2+ positives).
- ``2019qrels-pass.txt`` / ``2020qrels-pass.txt``: TREC qrels ``qid Q0 pid rel`` with graded relevance 0-3.
- ``triples.train.small.tsv``: ``query \\t positive passage \\t negative passage``; negatives share a term with
  the query (like BM25's top-1000 negatives of the real file) and are never one of the query's positives.

Structure: passages come in *topics* of ``passages_per_topic`` consecutive pids (MS MARCO gathered about ten
passages per Bing query) and topics in *domains*; a topic's passages share its topic terms, and a domain's
topics draw those from one pool. A query is built from its primary positive passage: a question prefix
("what is the"), some of the passage's content words and some noise words. The mix is tuned so that BM25
(k1 0.9, b 0.4) reaches a dev MRR@10 in MS MARCO's range (docs/scale.md has the measurements).

Determinism and memory: every random choice of a passage, a query or a triple is a counter-based hash
(splitmix64) of (seed, stream, index), and every draw from a distribution is an integer comparison against a
table of uint64 thresholds (no floating-point maths per draw). So any passage can be regenerated from its pid
alone (the triples file repeats passage texts without holding the collection), the output does not depend on the
block size, and the same seed and sizes give byte-identical files. Text is generated and written a block at a
time (``block_lines`` lines): memory stays flat in the collection's and the triples' size; only per-query ids
(qid, positive pids: about 40 MB at full size) are held whole.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftstudy.atomic import atomic_path, write_json

log = logging.getLogger(__name__)

MANIFEST = "scale_manifest.json"
FORMAT = "ftstudy.scale_dataset/1"
# File names: the official ones (src/ftstudy/synthetic.FILES) and those config/msmarco.yaml's eval_sets name.
COLLECTION, TRIPLES = "collection.tsv", "triples.train.small.tsv"
TRAIN_QUERIES, TRAIN_QRELS = "queries.train.tsv", "qrels.train.tsv"
DEV_QUERIES, DEV_QRELS = "queries.dev.small.tsv", "qrels.dev.small.tsv"
GRADED_FILES = {
    "dl19": ("msmarco-test2019-queries.tsv", "2019qrels-pass.txt"),
    "dl20": ("msmarco-test2020-queries.tsv", "2020qrels-pass.txt"),
}
CONTENT_VOCAB_FULL = 2_000_000  # invented words at full size (scaled with the collection by default)
MIN_CONTENT_VOCAB = 2_000
MAX_WORDS = 1023  # a passage's word position must fit the 10 low bits of its hash counter
TOKEN_BITS = 10
_U64 = np.uint64


# ---- sizes and text model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradedSize:
    """A TREC DL-style graded eval set: queries in the file, judged queries, qrels lines (all grades 0-3)."""

    n_queries: int
    n_judged: int
    n_qrels: int


@dataclass(frozen=True)
class ScaleSizes:
    """Every count the generator writes. The defaults are the real data set's (TREC DL 2019/2020: 200 queries
    each, 43 / 54 judged, 9,260 / 11,386 qrels lines); ``n_triples`` defaults to 8M of the real file's 39,780,811.
    ``vocab_size`` (invented content words) None = 2,000,000 x n_passages / 8,841,823, at least 2,000."""

    n_passages: int = 8_841_823
    n_train_queries: int = 808_731
    n_train_judged: int = 502_939
    n_train_qrels: int = 532_761
    n_triples: int = 8_000_000
    n_dev_queries: int = 6_980
    n_dev_qrels: int = 7_437
    graded: dict = field(
        default_factory=lambda: {"dl19": GradedSize(200, 43, 9_260), "dl20": GradedSize(200, 54, 11_386)}
    )
    vocab_size: int | None = None

    @property
    def content_vocab(self) -> int:
        if self.vocab_size is not None:
            return int(self.vocab_size)
        return max(MIN_CONTENT_VOCAB, round(CONTENT_VOCAB_FULL * self.n_passages / 8_841_823))

    def scaled(self, factor: float, n_triples: int | None = None) -> ScaleSizes:
        """The collection, training queries, qrels, triples and dev set times ``factor`` (rounded, at least 1);
        the graded sets keep their size (they are small already) but for at most n_passages / 2 qrels lines.
        ``n_triples`` overrides the scaled count."""

        def s(n: int) -> int:
            return max(1, round(n * factor))

        judged = s(self.n_train_judged)
        dev = s(self.n_dev_queries)
        n_passages = s(self.n_passages)
        graded = {
            name: dataclasses.replace(g, n_qrels=max(g.n_judged, min(g.n_qrels, n_passages // 2)))
            for name, g in self.graded.items()
        }
        return dataclasses.replace(
            self,
            graded=graded,
            n_passages=n_passages,
            n_train_queries=max(judged, s(self.n_train_queries)),
            n_train_judged=judged,
            n_train_qrels=max(judged, s(self.n_train_qrels)),
            n_triples=s(self.n_triples) if n_triples is None else int(n_triples),
            n_dev_queries=dev,
            n_dev_qrels=max(dev, s(self.n_dev_qrels)),
        )

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["content_vocab"] = self.content_vocab
        return d


@dataclass(frozen=True)
class TextModel:
    """How passages and queries are made; the defaults are the tuned ones (docs/scale.md).

    Passage tokens are function words (common English, Zipfian) with ``p_function``, the topic's terms with
    ``p_topic``, else background content words (Zipfian over the invented vocabulary). Lengths in words are
    log-normal (``log_mu``, ``log_sigma``: MS MARCO's, fitted on the real slice), clipped to [min_words, max_words].
    A query is a question prefix (with ``p_prefix``), ``query_from_positive`` content words of its primary positive
    (a count drawn with these probabilities for 1, 2, ...), and ``query_noise`` words not taken from it (0, 1, ...)."""

    passages_per_topic: int = 10
    topics_per_domain: int = 100
    topic_terms: int = 12
    domain_terms: int = 100
    pool_min_rank: float = 0.002  # domain pool terms: log-uniform over content ranks [this x vocab, vocab)
    p_function: float = 0.55
    p_topic: float = 0.2
    log_mu: float = 3.954
    log_sigma: float = 0.40
    min_words: int = 3
    max_words: int = 400
    p_period: float = 1 / 16
    p_comma: float = 1 / 14
    p_prefix: float = 0.75
    query_from_positive: tuple = (0.3, 0.35, 0.25, 0.1)
    query_noise: tuple = (0.1, 0.3, 0.3, 0.3)
    p_noise_pool: float = 0.9  # a noise word is a term of the domain's pool (else a background word)
    query_topic_shift: int = 3  # topic terms' pick keys are shifted right by this (>0: topic terms preferred)
    negative_rounds: int = 6  # candidate negatives tried per triple before falling back to a topic sibling
    p_negative_sibling: float = 0.4  # a candidate negative is a topic sibling, else a passage of the domain

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---- counter-based randomness ----------------------------------------------------------------------------
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (a bijection with good avalanche); returns a new array."""
    x = x ^ (x >> _S30)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def stream_key(seed: int, stream: str) -> np.uint64:
    """A 64-bit key for one named random stream of one seed (stable: sha256 of the pair)."""
    digest = hashlib.sha256(f"{int(seed)}:{stream}".encode()).digest()
    return _U64(int.from_bytes(digest[:8], "little"))


def draw(key: np.uint64, counter: np.ndarray) -> np.ndarray:
    """Uniform uint64 draws, one per counter (uint64 (n,)): a pure function of (key, counter)."""
    return _mix(np.asarray(counter, dtype=_U64) * _GOLDEN + key)


def thresholds(probs) -> np.ndarray:
    """uint64 thresholds for a categorical draw: ``np.searchsorted(t, u, 'right')`` on a uniform uint64 ``u``
    gives category i with probability ``probs[i] / sum(probs)`` (to 2^-53). Computed in Python floats."""
    p = [float(x) for x in probs]
    total = math.fsum(p)
    acc, out = 0.0, []
    for x in p[:-1]:
        acc += x / total
        out.append(min(int(acc * 2.0**64), 2**64 - 1))
    return np.array(out, dtype=_U64)


@functools.cache
def zipf_thresholds(n: int, start: float = 0.0) -> np.ndarray:
    """Thresholds for a log-uniform ("Zipf, exponent 1") rank in [0, n): rank r has probability
    ln((r + 2 + a) / (r + 1 + a)) / ln((n + 1 + a) / (1 + a)) with ``a = start`` (a > 0 flattens the head)."""
    if n < 1:
        raise ValueError(f"zipf_thresholds: n must be >= 1, got {n}")
    denom = math.log((n + 1 + start) / (1 + start))
    scale = 2.0**64 / denom
    cut = [min(int(math.log((r + 2 + start) / (1 + start)) * scale), 2**64 - 1) for r in range(n - 1)]
    return np.array(cut, dtype=_U64)


def log_uniform_rank_thresholds(lo: int, hi: int) -> np.ndarray:
    """Thresholds for a rank in [lo, hi) with density proportional to 1/rank (returned ranks are offsets from lo)."""
    return zipf_thresholds(hi - lo, start=float(lo))


# ---- vocabulary ------------------------------------------------------------------------------------------
# Common English words in rough frequency order (Fry's list, plus MS MARCO's question words); they take the top
# ranks, so BM25's stop words and the most frequent tokens look like real text.
COMMON_WORDS = """the of and to a in is it you that he was for on are with as his they be at one have this from
or had by not word but what some we can out other were all there when up use your how said an each she which do
their time if will way about many then them write would like so these her long make thing see him two has look
more day could go come did number sound no most people my over know water than call first who may down side been
now find any new work part take get place made live where after back little only round man year came show every
good me give our under name very through just form sentence great think say help low line differ turn cause much
mean before move right boy old too same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men change went light kind off need
house picture try us again animal point mother world near build self earth father head stand own page should
country found answer school grow study still learn plant cover food sun four between state keep eye never last
let thought city tree cross farm hard start might story saw far sea draw left late run while press close night
real life few north open seem together next white children begin got walk example ease paper group always music
those both mark often letter until mile river car feet care second book carry took science eat room friend began
idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual young
ready above ever red list though feel talk bird soon body dog family direct pose leave song measure door product
black short numeral class wind question happen complete ship area half rock order fire south problem piece told
knew pass since top whole king space heard best hour better true during hundred five remember step early hold
west ground interest reach fast verb sing listen six table travel less morning ten simple several vowel toward
war lay against pattern slow center love person money serve appear road map rain rule govern pull cold notice
voice unit power town fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest
correct able pound done beauty drive stood contain front teach week final gave green quick develop ocean warm
free minute strong special mind behind clear tail produce fact street inch multiply nothing course stay wheel
full force blue object decide surface deep moon island foot system busy test record boat common gold possible
plane dry wonder laugh thousand ago ran check game shape hot miss brought heat snow tire bring yes distant fill
east paint language among into define definition average cost meaning salary causes symptoms""".split()
# Query openings, as in MS MARCO's Bing queries (every word is one of COMMON_WORDS).
QUERY_PREFIXES = (
    "what is", "what is the", "what is a", "how to", "how much does", "how long does", "how many", "what are",
    "where is", "who is", "when was", "why do", "which", "define", "what does", "what causes", "definition of",
    "average", "cost of", "meaning of", "is", "can you", "how do you", "what to", "what is the average",
)  # fmt: skip
# Syllables of the invented words: letter strings that are single WordPiece tokens of the base model's vocabulary
# both word-initially and as a continuation ("##bat"), selected once from onset + vowel + coda combinations. So
# an invented word of k syllables costs k tokens, and passages cost about as many tokens as MS MARCO's (~80).
SYLLABLES = """
ba bad bag bal ban bar bas bat back band bang bank bard ball be bed bel ben bet beck belt bert bell bi bid bin
bis bit bing bird bill bo bon bot box bold bolt born bu bus buck burn bush bai bain beam beat bee bei boat board
book boot bound bay bey bow boy boys ca cal cam can cap car cas cat camp card cast ce cent ci cis co col com con
cot cock cu cum cup cut coat court da dad dal dam dan dar das de del den der des deck dent dell di dim din dick
ding do dog dom don dos dot dock dong du dun dust dai dee die dies door day down fa fan far fat fast fall fe fed
fen felt feng fest fell fi fin firm fish for fold ford form fort fu fur field foil foot ga gal gan gas gang gall
ge gel gen get gi gil gin gill go gold gong gu gum gun gus gut gee going good ha had hal ham han has hat hand
hang hard hart hall he hem hen her het held hell hi hid him hip his hit hill ho hog hon hop hot hold hong horn
hu hum hai hair head hear heard heart hee hood hay hey how ja jan jar jack je jet ji jin jing jo jon jong ju jun
just jean joy ka kam kan kat ke ked ken ki kim kin kit kind king kill ko kong ku kai kei key la lab lad lal lam
lan las land lang lash lass le led leg len les let lent less li lid lim lin lip lit lick lift ling link list lo
log lok los lot lock long lord lu lux lund lai laid lau lea leaf lean lee lei lie lies load lou lay ley low ma
mac mad mal man mar mas mat max mack mark mart me med mel men mer met mi mic min mir mis mit mind ming mist mill
mo mon mont most mu mum maid mail main mei moor mount mouth may na nad nam nan nas nat ne ned nes net neck nell
ness ni nic nik nick no non nor nos not nu nut nail nee neil nay now pa pac pad pal pan par pas pack park path
pass pe pen per pet pi pic pin pit ping po pod pol pop por pot port post pu put pee pie point pool pour ra raf
rag ram ran ras rat rand rang rank re red ren res rent rest ri ric rid rim rip rick rift ring ro rod rom ron rot
rock roll ross ru rug rum run rus rai rail rain real roi rook room ray rey row roy sa sal sam san sar sas sat
sack sant se sen ser set sell si sic sin sir sis sit sing so sol son su sul sum sun sur sai sea see say ta tad
tag tal tam tan tar tang te ted tel ten ter test tell ti tin tip tis tick ting till to tom ton top tor tu tub
tung turn tai tail tea tee tie tier ties tooth tour tow town toy va val van var ve vet vent vi vic vin vis vo
von vu vie wa wal wan war was wat wang ward wash wall we wed wen wes west well wi wig wil win wind wing with wo
won word work worm wu wai wear wee weed week wei wood way ways ya yan yang yard ye yen yer yes yi yin ying yo yu
year you za ze zen zu zee zoo bled block blood bra brand brick bro brush bread break brook cha chan champ chang
che chen cher chet cheng chi chin child ching cho chu class cloth claim craft crest croft cross crow drop drum
fleet flies flow fra front free frey glass gram grant grass grin group ground growth play pre press print pro
proof scan scent sha sham shan shaft shed shi shin ship sho shot shu ska ski skin sling slow smith sport stan
star stand ste stick stock storm stein swell tha than the thing thor thus tre tres tri trip trick trust train
tree tries tray wheel
""".split()


@dataclass(frozen=True)
class Vocabulary:
    """Token id -> word. Ids [0, n_common) are COMMON_WORDS, ids n_common + r the content word of rank r.

    ``matrix``: uint8 (n_words, width), each word's ASCII letters left-aligned and zero-padded (rendering
    gathers rows of it). All words are lower-case letters, at least two, and distinct after BM25's Porter
    stemming (so BM25's index has exactly this many terms, less the stop words)."""

    words: np.ndarray  # bytes dtype 'S{width}' (n_words,)
    n_common: int

    @property
    def matrix(self) -> np.ndarray:
        return self.words.view(np.uint8).reshape(len(self.words), -1)

    @property
    def n_content(self) -> int:
        return len(self.words) - self.n_common


def _candidate_words() -> Iterator[str]:
    """Invented words, fewest syllables first: SYLLABLES, then all two-syllable words in a fixed pseudo-random
    order (so that frequent words are not alphabetical), then three-syllable words in an affine-permuted order."""
    syl = SYLLABLES
    n = len(syl)
    yield from (syl[i] for i in np.argsort(draw(stream_key(0, "vocab-1"), np.arange(n)), kind="stable"))
    for k in np.argsort(draw(stream_key(0, "vocab-2"), np.arange(n * n)), kind="stable").tolist():
        yield syl[k // n] + syl[k % n]
    for k in range(n**3):
        j = (k * 2_654_435_761 + 97) % n**3  # a bijection of [0, n^3): the multiplier is a prime not dividing n
        yield syl[j // (n * n)] + syl[j // n % n] + syl[j % n]


@functools.cache
def vocabulary(n_content: int) -> Vocabulary:
    """COMMON_WORDS plus ``n_content`` invented words, all distinct after Porter stemming and none a stop word
    of BM25's list. Independent of the seed."""
    import bm25s.stopwords
    import Stemmer

    stem = Stemmer.Stemmer("porter").stemWord
    common = list(dict.fromkeys(COMMON_WORDS))
    used = {stem(w) for w in common} | set(bm25s.stopwords.STOPWORDS_EN)
    content: list[str] = []
    for w in _candidate_words():
        if len(content) == n_content:
            break
        s = stem(w)
        if len(w) >= 2 and s not in used:
            used.add(s)
            content.append(w)
    words = np.array([w.encode("ascii") for w in common + content])
    return Vocabulary(words=words, n_common=len(common))


# ---- ragged token sequences ------------------------------------------------------------------------------
@dataclass
class Ragged:
    """Token sequences of ``len(lengths)`` lines, concatenated: ``tokens`` int32 (sum(lengths),). Passages also
    carry per-token decoration: ``punct`` uint8 (0 none, 1 '.', 2 ',') after the word and ``cap`` (capital)."""

    tokens: np.ndarray
    lengths: np.ndarray
    punct: np.ndarray | None = None
    cap: np.ndarray | None = None

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)

    def line_of_token(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def position(self) -> np.ndarray:
        """Each token's position within its line (int64 (sum(lengths),))."""
        return np.arange(len(self.tokens), dtype=np.int64) - np.repeat(self.starts, self.lengths)


def concat_lines(parts: list[Ragged]) -> Ragged:
    """Line i of the result = line i of parts[0], then of parts[1], ... (no decoration)."""
    lines = np.concatenate([p.line_of_token() for p in parts])
    order = np.argsort(lines, kind="stable")
    tokens = np.concatenate([p.tokens for p in parts])[order]
    return Ragged(tokens.astype(np.int32), np.sum([p.lengths for p in parts], axis=0).astype(np.int64))


# ---- the corpus: passages, queries and their positives as pure functions of ids --------------------------
def _lognormal_probs(mu: float, sigma: float, lo: int, hi: int) -> list[float]:
    """P(length = k) for k in [lo, hi]: a log-normal discretised at half-integers, its tails folded into lo, hi."""

    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2.0))))

    edges = [0.0] + [cdf(k + 0.5) for k in range(lo, hi)] + [1.0]
    return [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class QuerySet:
    """One query file's queries: global query indices [offset, offset + n); the first ``n_judged`` are judged.
    ``order`` (int64 (n,)): the local indices in file order; ``counts`` (int64 (n_judged,)): positives each."""

    name: str
    offset: int
    n: int
    n_judged: int
    order: np.ndarray
    counts: np.ndarray | None = None


def nested_counts(n_judged: int, n_lines: int, key: np.uint64) -> np.ndarray:
    """Positives per judged query (int64 (n_judged,), sum n_lines): 1 each, and the extra lines given to nested
    random subsets (about 90% of the extra to a second positive, 90% of the rest to a third, ...)."""
    if n_lines < n_judged:
        raise ValueError(f"{n_lines} qrels lines for {n_judged} judged queries: expected at least one each")
    counts = np.ones(n_judged, dtype=np.int64)
    order = np.argsort(draw(key, np.arange(n_judged)), kind="stable")
    rem = n_lines - n_judged
    while rem > 0:
        take = min(n_judged, max(1, rem - rem // 10))
        counts[order[:take]] += 1
        rem -= take
    return counts


class ScaleCorpus:
    """Everything the files hold, as functions of pids and query indices (nothing is stored per passage).

    ``sizes`` (:class:`ScaleSizes`), ``seed`` (int), ``text`` (:class:`TextModel`). Query indices are global:
    training queries first, then dev, then the graded sets (``self.sets``)."""

    def __init__(self, sizes: ScaleSizes, seed: int, text: TextModel | None = None):
        self.sizes, self.seed, self.text = sizes, int(seed), text or TextModel()
        _check_sizes(sizes, self.text)
        t = self.text
        self.vocab = vocabulary(sizes.content_vocab)
        self.n_common = self.vocab.n_common
        self._key = functools.partial(stream_key, self.seed)
        self.n_topics = max(1, sizes.n_passages // t.passages_per_topic)
        self.n_domains = max(1, self.n_topics // t.topics_per_domain)
        v = self.vocab.n_content
        pool_lo = min(int(t.pool_min_rank * v), v - 1)
        self._thr = {
            "length": thresholds(_lognormal_probs(t.log_mu, t.log_sigma, t.min_words, t.max_words)),
            "kind": thresholds([t.p_function, t.p_topic, 1.0 - t.p_function - t.p_topic]),
            "common": zipf_thresholds(self.n_common),
            "content": zipf_thresholds(v),
            "topic": zipf_thresholds(t.topic_terms),
            "pool": zipf_thresholds(t.domain_terms),
            "pool_rank": log_uniform_rank_thresholds(pool_lo, v),
            "punct": thresholds([1.0 - t.p_period - t.p_comma, t.p_period, t.p_comma]),
            "from_pos": thresholds(t.query_from_positive),
            "noise": thresholds(t.query_noise),
            "prefix": thresholds([t.p_prefix, 1.0 - t.p_prefix]),
            "which_prefix": thresholds([1.0] * len(QUERY_PREFIXES)),
            "noise_pool": thresholds([t.p_noise_pool, 1.0 - t.p_noise_pool]),
            "sibling": thresholds([t.p_negative_sibling, 1.0 - t.p_negative_sibling]),
        }
        self._pool_lo = pool_lo
        self._prefixes = _prefix_table(self.vocab)
        self._make_queries()

    # -- passages --
    def _pick(self, name: str, stream: str, counter: np.ndarray) -> np.ndarray:
        """Category indices (int64) drawn from the named threshold table, one per counter."""
        return np.searchsorted(self._thr[name], draw(self._key(stream), counter), side="right").astype(np.int64)

    def passage_lengths(self, pids: np.ndarray) -> np.ndarray:
        """Words per passage (int64, same shape as ``pids``)."""
        return self.text.min_words + self._pick("length", "length", pids)

    def topic_of(self, pids: np.ndarray) -> np.ndarray:
        return np.minimum(np.asarray(pids, np.int64) // self.text.passages_per_topic, self.n_topics - 1)

    def topic_bounds(self, topics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first pid, number of passages) of each topic; the last topic takes the remainder."""
        start = topics * self.text.passages_per_topic
        end = np.where(topics == self.n_topics - 1, self.sizes.n_passages, start + self.text.passages_per_topic)
        return start, end - start

    def domain_bounds(self, topics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first pid, number of passages) of each topic's domain; the last domain takes the remainder."""
        dom = np.minimum(topics // self.text.topics_per_domain, self.n_domains - 1)
        span = self.text.topics_per_domain * self.text.passages_per_topic
        start = dom * span
        end = np.where(dom == self.n_domains - 1, self.sizes.n_passages, start + span)
        return start, end - start

    def topic_terms(self, topics: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Content rank of term ``k`` of each topic: a Zipfian pick from its domain's pool of terms."""
        topics = np.asarray(topics, np.int64)
        m = self._pick("pool", "topic-term", (topics.astype(_U64) << _U64(8)) | k.astype(_U64))
        return self.pool_terms(topics, m)

    def pool_terms(self, topics: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Content rank of term ``m`` of the pool of each topic's domain (log-uniform over the rarer ranks)."""
        dom = np.minimum(topics // self.text.topics_per_domain, self.n_domains - 1)
        return self._pool_lo + self._pick("pool_rank", "pool", (dom.astype(_U64) << _U64(16)) | m.astype(_U64))

    def passage_tokens(self, pids: np.ndarray, with_kind: bool = False):
        """The passages ``pids`` (int64 (n,)) as a decorated :class:`Ragged`; with ``with_kind`` also the kind
        of every token (int64: 0 common word, 1 topic term, 2 background content word)."""
        pids = np.asarray(pids, dtype=np.int64)
        lengths = self.passage_lengths(pids)
        r = Ragged(np.empty(int(lengths.sum()), np.int32), lengths)
        line = r.line_of_token()
        ctr = (pids[line].astype(_U64) << _U64(TOKEN_BITS)) | r.position().astype(_U64)
        kind = self._pick("kind", "kind", ctr)
        u = draw(self._key("word"), ctr)
        m = kind == 0
        r.tokens[m] = np.searchsorted(self._thr["common"], u[m], side="right")
        m = kind == 1
        k = np.searchsorted(self._thr["topic"], u[m], side="right")
        r.tokens[m] = self.n_common + self.topic_terms(self.topic_of(pids[line[m]]), k)
        m = kind == 2
        r.tokens[m] = self.n_common + np.searchsorted(self._thr["content"], u[m], side="right")
        punct = self._pick("punct", "punct", ctr).astype(np.uint8)
        starts = r.starts
        punct[starts + lengths - 1] = 1
        cap = np.zeros(len(punct), dtype=bool)
        cap[1:] = punct[:-1] == 1
        cap[starts] = True
        r.punct, r.cap = punct, cap
        return (r, kind) if with_kind else r

    def _int(self, stream: str, counter: np.ndarray, n) -> np.ndarray:
        """Uniform integers in [0, n) (int64; ``n`` an int or an int64 array), one per counter."""
        return (draw(self._key(stream), counter) >> _U64(1)).astype(np.int64) % n

    # -- queries --
    def _make_queries(self) -> None:
        """Query sets, qids (distinct, sparse), primary positives (distinct pids: one per stratum of the
        collection) and, for the binary sets, the positives table (int64 (n_judged, max count), -1 padded)."""
        s = self.sizes
        specs = [("train", s.n_train_queries, s.n_train_judged, s.n_train_qrels)]
        specs += [("dev", s.n_dev_queries, s.n_dev_queries, s.n_dev_qrels)]
        specs += [(name, g.n_queries, g.n_judged, None) for name, g in s.graded.items()]
        n_all = sum(n for _, n, _, _ in specs)
        space = np.arange(2 * n_all, dtype=np.int64)
        self.qid = np.sort(np.argsort(draw(self._key("qid"), space), kind="stable")[:n_all])
        self.qid = self.qid[np.argsort(draw(self._key("qid-order"), np.arange(n_all)), kind="stable")]
        strata = np.argsort(draw(self._key("strata"), np.arange(n_all)), kind="stable")
        n = s.n_passages
        self.primary = (strata * n + self._int("stratum-pid", np.arange(n_all), n)) // n_all
        self.sets: dict[str, QuerySet] = {}
        self.positives: dict[str, np.ndarray] = {}
        offset = 0
        for name, n_q, n_judged, n_lines in specs:
            order = np.argsort(draw(self._key(f"order-{name}"), np.arange(n_q)), kind="stable")
            counts = None if n_lines is None else nested_counts(n_judged, n_lines, self._key(f"counts-{name}"))
            if counts is not None and counts.max() >= self.text.passages_per_topic:
                raise ValueError(f"scale data set: {n_lines} qrels lines for {n_judged} {name} queries give a query "
                                 f"{counts.max()} positives; expected fewer than passages_per_topic "
                                 f"{self.text.passages_per_topic}")  # fmt: skip
            self.sets[name] = QuerySet(name, offset, n_q, n_judged, order, counts)
            if counts is not None:
                self.positives[name] = self._positives(offset + np.arange(n_judged), counts)
            offset += n_q

    def _positives(self, gi: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Primary positive, then ``counts - 1`` distinct other passages of its topic, per query."""
        pids = self.primary[gi]
        start, size = self.topic_bounds(self.topic_of(pids))
        inner = pids - start
        offset = 1 + self._int("sibling-offset", gi, size - counts + 1)
        table = np.full((len(gi), int(counts.max(initial=1))), -1, dtype=np.int64)
        table[:, 0] = pids
        for j in range(1, table.shape[1]):
            m = counts > j
            table[m, j] = start[m] + (inner[m] + offset[m] + j - 1) % size[m]
        return table

    def query_tokens(self, gi: np.ndarray) -> Ragged:
        """Queries ``gi`` (global indices, int64 (n,)): a question prefix, content words of the primary positive
        (topic terms preferred) in passage order, then noise words; never empty."""
        gi = np.asarray(gi, dtype=np.int64)
        pas, kind = self.passage_tokens(self.primary[gi], with_kind=True)
        line = pas.line_of_token()
        key = draw(self._key("query-pick"), (gi[line].astype(_U64) << _U64(TOKEN_BITS)) | pas.position().astype(_U64))
        key = np.where(kind == 1, key >> _U64(self.text.query_topic_shift), key)
        content = kind > 0
        want = 1 + self._pick("from_pos", "query-n", gi)
        # per line: content tokens first, in random key order (topic terms' keys shrunk, so preferred)
        order = np.lexsort((key, ~content, line))
        rank = np.arange(len(order)) - pas.starts[line[order]]
        chosen = np.sort(order[(rank < want[line[order]]) & content[order]])
        picked = Ragged(pas.tokens[chosen], np.bincount(line[chosen], minlength=len(gi)).astype(np.int64))
        n_noise = np.maximum(self._pick("noise", "query-noise", gi), (picked.lengths == 0).astype(np.int64))
        noise = Ragged(np.empty(int(n_noise.sum()), np.int32), n_noise)
        ctr = (gi[noise.line_of_token()].astype(_U64) << _U64(4)) | noise.position().astype(_U64)
        background = self._pick("content", "query-noise-word", ctr)
        topics = self.topic_of(self.primary[gi[noise.line_of_token()]])
        related = self.pool_terms(topics, self._pick("pool", "query-noise-pool", ctr))
        from_pool = self._pick("noise_pool", "query-noise-kind", ctr) == 0
        noise.tokens[:] = self.n_common + np.where(from_pool, related, background)
        has = self._pick("prefix", "query-prefix", gi) == 0
        which = self._pick("which_prefix", "query-which", gi)
        table, table_len = self._prefixes
        plen = np.where(has, table_len[which], 0)
        rows = table[which[has]]
        prefix = Ragged(rows[rows >= 0].astype(np.int32), plen.astype(np.int64))
        return concat_lines([prefix, picked, noise])

    # -- triples --
    def triples(self, lines: np.ndarray) -> tuple[Ragged, np.ndarray, np.ndarray]:
        """Triples lines ``lines`` (int64 (n,)): (query tokens, positive pid, negative pid). The query is a
        judged training query, the positive one of its positives, the negative a passage of its topic or domain
        that shares a content word with the query and is none of its positives."""
        lines = np.asarray(lines, dtype=np.int64)
        st = self.sets["train"]
        jq = self._int("triple-query", lines, st.n_judged)
        table = self.positives["train"][jq]
        pos = table[np.arange(len(lines)), self._int("triple-positive", lines, st.counts[jq])]
        query = self.query_tokens(st.offset + jq)
        return query, pos, self._negatives(lines, table, query)

    def _negatives(self, lines: np.ndarray, positives: np.ndarray, query: Ragged) -> np.ndarray:
        n_words = len(self.vocab.words)
        qline = query.line_of_token()
        m = query.tokens >= self.n_common
        qkeys = np.unique(qline[m] * n_words + query.tokens[m])
        topic = self.topic_of(positives[:, 0])
        t_start, t_size = self.topic_bounds(topic)
        d_start, d_size = self.domain_bounds(topic)
        neg = np.full(len(lines), -1, dtype=np.int64)
        todo = np.arange(len(lines))
        for r in range(self.text.negative_rounds):
            if not todo.size:
                break
            ctr = (lines[todo].astype(_U64) << _U64(4)) | _U64(r)
            sib = self._pick("sibling", "neg-kind", ctr) == 0
            cand = np.where(
                sib,
                t_start[todo] + self._int("neg-sibling", ctr, t_size[todo]),
                d_start[todo] + self._int("neg-domain", ctr, d_size[todo]),
            )
            toks = self.passage_tokens(cand)
            tline = toks.line_of_token()
            hit = np.isin(todo[tline] * n_words + toks.tokens, qkeys)
            ok = np.bincount(tline[hit], minlength=len(todo)) > 0
            ok &= ~(positives[todo] == cand[:, None]).any(axis=1)
            neg[todo[ok]] = cand[ok]
            todo = todo[~ok]
        # fallback (rare): the first passage of the topic, from a random start, that is no positive
        first = self._int("neg-fallback", lines[todo], t_size[todo])
        for step in range(int(t_size[todo].max(initial=0))):
            cand = t_start[todo] + (first + step) % t_size[todo]
            ok = ~(positives[todo] == cand[:, None]).any(axis=1)
            neg[todo[ok]] = cand[ok]
            todo, first = todo[~ok], first[~ok]
        return neg

    # -- graded sets --
    def graded_qrels(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TREC DL-style judgments of graded set ``name``: (qid, pid, relevance) int64 arrays sorted by qid, pid.

        Every judged query has its primary positive at grade 3, then passages of its topic (mostly graded 2-3),
        of its domain (graded like TREC DL 2019's pool: 56/17/19/8% for 0/1/2/3) and, where those run out, of
        the whole collection (mostly 0). Judgments per query vary; their total is the set's n_qrels."""
        st, size = self.sets[name], self.sizes.graded[name]
        n_j = st.n_judged
        base = max(1, size.n_qrels // (2 * n_j))
        spare = size.n_qrels - base * n_j
        cuts = np.sort(self._int(f"graded-cuts-{name}", np.arange(n_j - 1), spare + 1))
        counts = base + np.diff(np.concatenate(([0], cuts, [spare])))
        grade_thr = {0: thresholds([0.1, 0.2, 0.4, 0.3]), 1: thresholds([0.56, 0.17, 0.19, 0.08]),
                     2: thresholds([0.85, 0.12, 0.03, 0.0])}  # fmt: skip
        out = []
        for li in range(n_j):
            gi = st.offset + li
            pids, source = self._judged_pool(gi, int(counts[li]))
            u = draw(self._key(f"grade-{name}"), (np.uint64(gi) << _U64(24)) | np.arange(len(pids), dtype=_U64))
            rel = np.zeros(len(pids), dtype=np.int64)
            for src, thr in grade_thr.items():
                rel[source == src] = np.searchsorted(thr, u[source == src], side="right")
            qid = np.full(len(pids) + 1, self.qid[gi], dtype=np.int64)
            out.append((qid, np.concatenate(([self.primary[gi]], pids)), np.concatenate(([3], rel))))
        qid, pid, rel = (np.concatenate(col) for col in zip(*out, strict=True))
        order = np.lexsort((pid, qid))
        return qid[order], pid[order], rel[order]

    def _judged_pool(self, gi: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count - 1`` distinct pids other than the primary positive of query ``gi``, with their source
        (int64: 0 its topic, 1 its domain, 2 elsewhere), topic first."""
        primary = int(self.primary[gi])
        topic = self.topic_of(np.array([primary]))
        (t0,), (tn,) = self.topic_bounds(topic)
        (d0,), (dn,) = self.domain_bounds(topic)
        n = self.sizes.n_passages
        k = np.arange(dn, dtype=_U64)
        domain = d0 + np.argsort(draw(self._key("pool-domain"), (np.uint64(gi) << _U64(24)) | k), kind="stable")
        stride = 1 + int(self._int("pool-stride", np.array([gi]), max(1, n - 1))[0])
        while math.gcd(stride, n) != 1:
            stride += 1
        start = int(self._int("pool-start", np.array([gi]), n)[0])
        elsewhere = (start + stride * np.arange(min(n, count + tn + dn), dtype=np.int64)) % n
        cand = np.concatenate((t0 + np.arange(tn), domain, elsewhere))
        _, first = np.unique(cand, return_index=True)
        cand = cand[np.sort(first)]
        cand = cand[cand != primary][: count - 1]
        source = np.where((cand >= t0) & (cand < t0 + tn), 0, np.where((cand >= d0) & (cand < d0 + dn), 1, 2))
        return cand, source


def _prefix_table(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """QUERY_PREFIXES as token ids: (int32 (n_prefixes, longest), -1 padded; int64 lengths)."""
    index = {w.decode(): i for i, w in enumerate(vocab.words[: vocab.n_common])}
    rows = [[index[w] for w in p.split()] for p in QUERY_PREFIXES]
    table = np.full((len(rows), max(map(len, rows))), -1, dtype=np.int32)
    for i, r in enumerate(rows):
        table[i, : len(r)] = r
    return table, np.array([len(r) for r in rows], dtype=np.int64)


def _check_sizes(s: ScaleSizes, t: TextModel) -> None:
    """Sizes and knobs the generator can honour; ValueError naming the first that it cannot."""
    n_all = s.n_train_queries + s.n_dev_queries + sum(g.n_queries for g in s.graded.values())
    problems = [
        (
            s.n_passages >= t.passages_per_topic,
            f"n_passages {s.n_passages} < passages_per_topic {t.passages_per_topic}",
        ),
        (n_all <= s.n_passages, f"{n_all} queries in all > n_passages {s.n_passages} (each needs its own positive)"),
        (1 <= s.n_train_judged <= s.n_train_queries, "n_train_judged must be in [1, n_train_queries]"),
        (s.n_train_qrels >= s.n_train_judged, "n_train_qrels must be >= n_train_judged"),
        (1 <= s.n_dev_queries <= s.n_dev_qrels, "n_dev_qrels must be >= n_dev_queries >= 1"),
        (s.n_triples >= 1, "n_triples must be >= 1"),
        (0 < t.p_function + t.p_topic < 1, "p_function + p_topic must be in (0, 1)"),
        (t.min_words >= 1 and t.max_words <= MAX_WORDS, f"passage lengths must lie in [1, {MAX_WORDS}]"),
    ]
    for name, g in s.graded.items():
        problems.append((1 <= g.n_judged <= g.n_queries, f"graded set {name}: n_judged must be in [1, n_queries]"))
        problems.append((g.n_judged <= g.n_qrels <= s.n_passages, f"graded set {name}: n_qrels must be in "
                         f"[n_judged, n_passages]"))  # fmt: skip
    for ok, message in problems:
        if not ok:
            raise ValueError(f"scale data set: {message}")


# ---- rendering token sequences as TSV bytes --------------------------------------------------------------
_PUNCT_BYTES = np.array([0, ord("."), ord(",")], dtype=np.uint8)
_ID_DIGITS = 19  # int64


def _digits(ids: np.ndarray) -> np.ndarray:
    """Decimal ASCII of non-negative ints, left-aligned and zero-padded: uint8 (n, width of the largest)."""
    ids = np.asarray(ids, dtype=np.int64)
    width = len(str(int(ids.max(initial=0))))
    n_digits = np.ones(len(ids), dtype=np.int64)
    for k in range(1, width):
        n_digits += ids >= 10**k
    out = np.zeros((len(ids), width), dtype=np.uint8)
    for col in range(width):
        power = np.maximum(n_digits - 1 - col, 0)
        digit = (ids // (10**power)) % 10
        out[:, col] = np.where(col < n_digits, 48 + digit, 0)
    return out


def render_lines(fields: list[Ragged], vocab: Vocabulary, ids: np.ndarray | None = None) -> bytes:
    """TSV lines: ``[id \\t] field1 \\t field2 ... \\n``, words joined by single spaces, each passage word with its
    capital and punctuation. Every field of every line must hold at least one token. Vectorised: one row of
    bytes per word (the vocabulary's padded row, punctuation, separator), zero bytes dropped at the end."""
    n = len(fields[0].lengths)
    for f in fields:
        if len(f.lengths) != n or (f.lengths < 1).any():
            raise ValueError("render_lines: every field needs one non-empty token sequence per line")
    lead = 0 if ids is None else 1
    per_line = lead + np.sum([f.lengths for f in fields], axis=0)
    line_start = np.concatenate(([0], np.cumsum(per_line)[:-1])).astype(np.int64)
    n_rows = int(per_line.sum())
    tok = np.full(n_rows, -1, dtype=np.int64)
    punct = np.zeros(n_rows, dtype=np.uint8)
    cap = np.zeros(n_rows, dtype=bool)
    sep = np.full(n_rows, ord(" "), dtype=np.uint8)
    offset = line_start + lead
    for i, f in enumerate(fields):
        dest = offset[f.line_of_token()] + f.position()
        tok[dest] = f.tokens
        if f.punct is not None:
            punct[dest] = _PUNCT_BYTES[f.punct]
            cap[dest] = f.cap
        offset = offset + f.lengths
        sep[offset - 1] = ord("\n") if i == len(fields) - 1 else ord("\t")
    width = vocab.matrix.shape[1]
    id_width = 0 if ids is None else len(str(int(np.max(ids, initial=0))))
    rows = np.zeros((n_rows, max(width, id_width) + 2), dtype=np.uint8)
    word = tok >= 0
    rows[word, :width] = vocab.matrix[tok[word]]
    rows[cap, 0] -= 32  # lower-case ASCII letter -> capital
    if ids is not None:
        rows[line_start, :id_width] = _digits(ids)
        sep[line_start] = ord("\t")
    rows[:, -2] = punct
    rows[:, -1] = sep
    return rows[rows != 0].tobytes()


# ---- writing the files -----------------------------------------------------------------------------------
class _Sink:
    """A binary file being written, with its sha256, byte count and line count kept up to date."""

    def __init__(self, fh):
        self.fh, self.sha, self.n_bytes, self.n_lines = fh, hashlib.sha256(), 0, 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.sha.update(data)
        self.n_bytes += len(data)
        self.n_lines += data.count(b"\n")

    def summary(self) -> dict:
        return {"bytes": self.n_bytes, "lines": self.n_lines, "sha256": self.sha.hexdigest()}


def _write_file(path: Path, blocks: Iterator[bytes]) -> dict:
    """Write ``blocks`` to ``path`` atomically; returns {bytes, lines, sha256}."""
    with atomic_path(path) as tmp, open(tmp, "wb", buffering=1 << 22) as fh:
        sink = _Sink(fh)
        for data in blocks:
            sink.write(data)
    return sink.summary()


def _blocks(total: int, block: int, name: str, unit: str, progress: bool) -> Iterator[np.ndarray]:
    """Index blocks [start, stop) covering range(total), with a log line about every 10 s (and at the end)."""
    started = last = time.perf_counter()
    for start in range(0, total, block):
        stop = min(total, start + block)
        yield np.arange(start, stop, dtype=np.int64)
        now = time.perf_counter()
        if progress and (now - last >= 10 or stop == total):
            last = now
            rate = stop / max(now - started, 1e-9)
            log.info("%s: %s / %s %s (%.1f%%), %.0f s, %.0f %s/s, ETA %.0f s", name, f"{stop:,}", f"{total:,}",
                     unit, 100 * stop / total, now - started, rate, unit, (total - stop) / rate)  # fmt: skip


def collection_blocks(corpus: ScaleCorpus, block: int = 50_000, progress: bool = True) -> Iterator[bytes]:
    """collection.tsv's bytes, ``block`` passages at a time (memory: one block)."""
    for pids in _blocks(corpus.sizes.n_passages, block, COLLECTION, "passages", progress):
        yield render_lines([corpus.passage_tokens(pids)], corpus.vocab, ids=pids)


def query_blocks(corpus: ScaleCorpus, name: str, block: int = 50_000, progress: bool = True) -> Iterator[bytes]:
    """A query file's bytes (``qid \\t text``), in the set's file order."""
    st = corpus.sets[name]
    for idx in _blocks(st.n, block, f"queries {name}", "queries", progress):
        gi = st.offset + st.order[idx]
        yield render_lines([corpus.query_tokens(gi)], corpus.vocab, ids=corpus.qid[gi])


def binary_qrels_bytes(corpus: ScaleCorpus, name: str) -> bytes:
    """``qid \\t 0 \\t pid \\t 1`` lines of a binary set, judged queries in file order, positives primary first."""
    st = corpus.sets[name]
    local = st.order[st.order < st.n_judged]
    table = corpus.positives[name][local]
    qid = np.repeat(corpus.qid[st.offset + local], table.shape[1]).reshape(table.shape)
    keep = table >= 0
    return "".join(f"{q}\t0\t{p}\t1\n" for q, p in zip(qid[keep].tolist(), table[keep].tolist(), strict=True)).encode()


def graded_qrels_bytes(corpus: ScaleCorpus, name: str) -> bytes:
    """``qid Q0 pid rel`` lines (TREC qrels, as 2019qrels-pass.txt), sorted by qid then pid."""
    qid, pid, rel = corpus.graded_qrels(name)
    return "".join(
        f"{q} Q0 {p} {r}\n" for q, p, r in zip(qid.tolist(), pid.tolist(), rel.tolist(), strict=True)
    ).encode()


def triples_blocks(corpus: ScaleCorpus, block: int = 50_000, progress: bool = True) -> Iterator[bytes]:
    """triples.train.small.tsv's bytes (``query \\t positive \\t negative``), ``block`` lines at a time."""
    for lines in _blocks(corpus.sizes.n_triples, block, TRIPLES, "triples", progress):
        query, pos, neg = corpus.triples(lines)
        fields = [query, corpus.passage_tokens(pos), corpus.passage_tokens(neg)]
        yield render_lines(fields, corpus.vocab)


def file_plan(corpus: ScaleCorpus, block: int, progress: bool) -> dict[str, Callable[[], Iterator[bytes]]]:
    """File name -> a function giving its bytes in blocks, in the order :func:`generate` writes them."""
    plan: dict[str, Callable[[], Iterator[bytes]]] = {
        COLLECTION: lambda: collection_blocks(corpus, block, progress),
        TRAIN_QUERIES: lambda: query_blocks(corpus, "train", block, progress),
        TRAIN_QRELS: lambda: iter([binary_qrels_bytes(corpus, "train")]),
        DEV_QUERIES: lambda: query_blocks(corpus, "dev", block, progress),
        DEV_QRELS: lambda: iter([binary_qrels_bytes(corpus, "dev")]),
    }
    for name, (queries, qrels) in GRADED_FILES.items():
        if name in corpus.sets:
            plan[queries] = functools.partial(query_blocks, corpus, name, block, progress)
            plan[qrels] = functools.partial(lambda n: iter([graded_qrels_bytes(corpus, n)]), name)
    plan[TRIPLES] = lambda: triples_blocks(corpus, block, progress)
    return plan


def generate(
    out_dir: str | os.PathLike,
    sizes: ScaleSizes | None = None,
    seed: int = 0,
    text: TextModel | None = None,
    block: int = 50_000,
    progress: bool = True,
) -> dict:
    """Write every file into ``out_dir`` (each atomically), then the manifest ``scale_manifest.json`` beside them;
    returns the manifest: format, seed, sizes, text model, vocabulary size, and per file {bytes, lines, sha256}.
    The files and the manifest depend only on (sizes, seed, text), never on ``block`` (lines per block)."""
    sizes = sizes or ScaleSizes()
    out = Path(out_dir)
    started = time.perf_counter()
    corpus = ScaleCorpus(sizes, seed, text)
    log.info("scale data set: seed %d, %s passages, vocabulary %s words (%.1f s to set up)", seed,
             f"{sizes.n_passages:,}", f"{len(corpus.vocab.words):,}", time.perf_counter() - started)  # fmt: skip
    files = {}
    for name, blocks in file_plan(corpus, block, progress).items():
        t0 = time.perf_counter()
        files[name] = _write_file(out / name, blocks())
        log.info("wrote %s: %s lines, %s bytes in %.1f s", out / name, f"{files[name]['lines']:,}",
                 f"{files[name]['bytes']:,}", time.perf_counter() - t0)  # fmt: skip
    manifest = {
        "format": FORMAT,
        "generator": "ftstudy.scale_dataset",
        "seed": int(seed),
        "sizes": sizes.as_dict(),
        "text_model": corpus.text.as_dict(),
        "vocabulary": {"common_words": corpus.n_common, "content_words": corpus.vocab.n_content},
        "files": files,
    }
    write_json(out / MANIFEST, manifest)
    log.info("scale data set written to %s in %.1f s", out, time.perf_counter() - started)
    return manifest


def file_checksums(out_dir: str | os.PathLike, names=None) -> dict:
    """{name: {bytes, lines, sha256}} of the files in ``out_dir``, read back from disk (default: the manifest's
    files). Compare with the manifest's ``files`` to check a copy."""
    out = Path(out_dir)
    if names is None:
        import json

        names = sorted(json.loads((out / MANIFEST).read_text())["files"])
    result = {}
    for name in names:
        sha, n_bytes, n_lines = hashlib.sha256(), 0, 0
        with open(out / name, "rb") as fh:
            while chunk := fh.read(1 << 22):
                sha.update(chunk)
                n_bytes += len(chunk)
                n_lines += chunk.count(b"\n")
        result[name] = {"bytes": n_bytes, "lines": n_lines, "sha256": sha.hexdigest()}
    return result
