"""The embedded default's generated data set: a small MS MARCO look-alike, deterministic from a seed.

The project ships no MS MARCO text. :func:`generate` builds, in pure Python from ``random.Random(seed)``, a
collection of short English passages about invented entities (rivers, mountains, chemical compounds, animals,
towns, dishes), search-engine style queries that each have exactly one judged answer passage, and training
triples whose negatives look relevant (same entity or shared words), like the official
``triples.train.small.tsv`` whose negatives come from BM25's top 1000 (here bm25s through :mod:`ftstudy.bm25`).
:func:`write_dataset` writes the official file names and formats:

- ``collection.tsv``: ``pid \\t passage``
- ``queries.train.tsv`` / ``queries.dev.small.tsv``: ``qid \\t query``
- ``qrels.train.tsv`` / ``qrels.dev.small.tsv``: ``qid \\t 0 \\t pid \\t 1``
- ``triples.train.small.tsv``: ``query \\t positive passage \\t negative passage``

Retrieval is hard for the right reasons: every entity (a *topic*) has many passages that share its name but
state a different attribute (its length, its source, its depth ...); passages about other entities of the same
kind state the same attribute with other values, sometimes comparing themselves with the queried entity by name;
overview and question-style passages repeat the query's words without answering. Nothing is random noise.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ftstudy.atomic import atomic_path

FILES = (
    "collection.tsv",
    "queries.train.tsv",
    "qrels.train.tsv",
    "triples.train.small.tsv",
    "queries.dev.small.tsv",
    "qrels.dev.small.tsv",
)

# Difficulty knobs (probabilities per answer passage). Tuned so that the base model's MRR@10 on the dev
# queries is about 0.5 at the default size (docs/synthetic.md has the measurements).
P_MENTION = 0.6  # a sentence naming other attributes of the same entity (their words, not their values)
P_COMPARE = 0.5  # a sentence comparing the entity with a named sibling of the same kind on the same attribute
P_EXTRA_SIBLING = 0.35  # a sentence naming a sibling entity in passing
NAME_FAMILY = 3  # entities of one kind per shared name stem
SHARE_GENERAL = 0.65  # share of a topic's passages that answer nothing (overview, FAQ, news)
MIN_WORDS, MAX_WORDS = 40, 90
ANSWER_WORDS = (70, 90)  # answer passages: the fact is one sentence among several
NEAR_MISS_WORDS = (40, 48)  # near misses: shorter, so their topic words weigh more

# ---- templates and word lists (package data: ftstudy/data/synthetic_templates.json) ------------------------
TEMPLATES_FILE = "synthetic_templates.json"


def _num(lo, hi, step=1, unit_fmt="{:,}"):
    def gen(rng):
        x = rng.randrange(lo, hi + 1, step)
        return x, unit_fmt.format(x)

    return gen


def _dec(lo, hi, digits=1):
    def gen(rng):
        x = round(rng.uniform(lo, hi), digits)
        return x, f"{x:.{digits}f}"

    return gen


def _pick(options):
    def gen(rng):
        v = rng.choice(options)
        return None, v

    return gen


def _name_in(pattern):
    """A value that contains a fresh invented name, e.g. 'Lake {N}'."""

    def gen(rng):
        return None, pattern.format(N=_make_name(rng))

    return gen


# How a template file's "value" spec becomes a draw: {"number": [lo, hi, step, format]} ...
VALUE_KINDS = {
    "number": lambda a: _num(*a),
    "decimal": lambda a: _dec(*a),
    "pick": lambda a: _pick(tuple(a)),
    "name_in": lambda a: _name_in(a),
}


@dataclass(frozen=True)
class Attr:
    """One attribute of an entity kind: how to draw its value, state it, ask for it and allude to it."""

    key: str
    value: object  # rng -> (number or None, text)
    facts: tuple  # sentences stating the value: {E} entity, {v} value, {T} a town, {R} a region
    queries: tuple  # search queries: {q} entity as typed in a search box
    word: str  # noun phrase for allusions ("its length")
    compare: tuple | None = None  # (more, less) phrases, e.g. ("longer than", "shorter than")


@dataclass(frozen=True)
class Kind:
    name: str
    entity: str  # e.g. "the {N} River"
    query_form: str  # e.g. "{n} river"
    noun: str  # "river"
    fillers: tuple
    attrs: tuple
    subkinds: tuple = ()  # drawn once per entity as {K}/{k}, e.g. the animal's kind ("fox")


@dataclass(frozen=True)
class Templates:
    """Everything the generator writes with: invented-name parts, regions, filler sentences and entity kinds."""

    prefixes: tuple
    suffixes: tuple
    regions: tuple
    generic_fillers: tuple
    sources_say: tuple
    kinds: tuple


def _attr(spec: dict, where: str) -> Attr:
    (kind, args), *more = spec["value"].items()
    if more or kind not in VALUE_KINDS:
        raise ValueError(f"{where}: value must be one of {sorted(VALUE_KINDS)} (a single key), got {spec['value']}")
    compare = tuple(spec["compare"]) if "compare" in spec else None
    return Attr(spec["key"], VALUE_KINDS[kind](args), tuple(spec["facts"]), tuple(spec["queries"]), spec["word"],
                compare)  # fmt: skip


def _kind(spec: dict, where: str) -> Kind:
    attrs = tuple(_attr(a, f"{where}, attribute {a.get('key', i)!r}") for i, a in enumerate(spec["attrs"]))
    return Kind(spec["name"], spec["entity"], spec["query_form"], spec["noun"], tuple(spec["fillers"]), attrs,
                tuple(spec.get("subkinds", ())))  # fmt: skip


def parse_templates(text: str, source: str = TEMPLATES_FILE) -> Templates:
    """Templates from the JSON text of a template file; ValueError naming ``source``, the line or the kind."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    try:
        kinds = tuple(_kind(k, f"{source}: kind {k.get('name', i)!r}") for i, k in enumerate(raw["kinds"]))
        return Templates(tuple(raw["prefixes"].split()), tuple(raw["suffixes"].split()), tuple(raw["regions"]),
                         tuple(raw["generic_fillers"]), tuple(raw["sources_say"]), kinds)  # fmt: skip
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: missing or malformed entry ({type(exc).__name__}: {exc}); expected the layout "
                         "of ftstudy/data/synthetic_templates.json") from None  # fmt: skip


@functools.cache
def load_templates() -> Templates:
    """The templates shipped with the package (read once per process through importlib.resources)."""
    resource = importlib.resources.files("ftstudy") / "data" / TEMPLATES_FILE
    return parse_templates(resource.read_text(encoding="utf-8"), str(resource))


def _make_name(rng) -> str:
    tpl = load_templates()
    return (rng.choice(tpl.prefixes) + rng.choice(tpl.suffixes)).capitalize()


# ---- data model ------------------------------------------------------------------------------------------
@dataclass
class Entity:
    kind: Kind
    name: str  # invented proper name, e.g. "Tarnel"
    label: str  # as written in passages, e.g. "the Tarnel River"
    query: str  # as typed in queries, e.g. "tarnel river"
    values: dict = field(default_factory=dict)  # attr key -> (number | None, text)
    subkind: str = ""


@dataclass
class Passage:
    text: str
    topic: int  # index of the entity
    attr: str  # attribute answered (role "answer") or discussed without its value (role "near_miss")
    role: str


@dataclass
class SyntheticDataset:
    """Everything :func:`write_dataset` writes, plus the topic of every passage (for analysis and tests)."""

    collection: list  # [(pid, text)] sorted by pid
    train_queries: list  # [(qid, text)]
    train_qrels: list  # [(qid, pid)]
    dev_queries: list
    dev_qrels: list
    triples: list  # [(query, positive text, negative text)]
    topics: dict  # pid -> topic index
    roles: dict  # pid -> (role, attribute key), role "answer" or "near_miss"
    entities: list  # [label] per topic

    def tsv_texts(self) -> dict:
        """File name -> exact file contents (UTF-8 text, '\\n' line ends)."""

        def lines(rows):
            return "".join("\t".join(str(c) for c in row) + "\n" for row in rows)

        return {
            "collection.tsv": lines(self.collection),
            "queries.train.tsv": lines(self.train_queries),
            "qrels.train.tsv": lines((q, 0, p, 1) for q, p in self.train_qrels),
            "triples.train.small.tsv": lines(self.triples),
            "queries.dev.small.tsv": lines(self.dev_queries),
            "qrels.dev.small.tsv": lines((q, 0, p, 1) for q, p in self.dev_qrels),
        }


# ---- text building ---------------------------------------------------------------------------------------
def _fmt(template: str, ent: Entity, **kw) -> str:
    return template.format(E=ent.label, N=ent.name, K=ent.subkind, **kw)


def _sentence(s: str) -> str:
    s = re.sub(r"\s+", " ", s).strip()
    return s[0].upper() + s[1:] if s else s


def _make_entities(rng: random.Random, n_topics: int) -> list[Entity]:
    used: set[str] = set()
    entities = []
    tpl = load_templates()
    kinds = list(tpl.kinds)
    # Entities of one kind share name stems in small families (Tarnel River, Tarvan River ...), so that a
    # sibling's passage about the same attribute is a near duplicate of the answer.
    n_of_kind = [len(range(k, n_topics, len(kinds))) for k in range(len(kinds))]
    stems = [rng.sample(tpl.prefixes, max(1, -(-n // NAME_FAMILY))) for n in n_of_kind]
    for i in range(n_topics):
        kind = kinds[i % len(kinds)]
        for _ in range(1000):
            name = (rng.choice(stems[i % len(kinds)]) + rng.choice(tpl.suffixes)).capitalize()
            if name not in used:
                break
        else:  # pragma: no cover - 840 names, at most n_topics drawn
            raise ValueError(f"synthetic.n_topics={n_topics}: ran out of distinct invented names")
        used.add(name)
        sub = rng.choice(kind.subkinds) if kind.subkinds else ""
        label = kind.entity.format(N=name, K=sub)
        query = kind.query_form.format(n=name.lower(), k=sub)
        ent = Entity(kind=kind, name=name, label=label, query=query, subkind=sub)
        for attr in kind.attrs:
            num, text = attr.value(rng)
            if "{N}" in text:
                text = text.format(N=_make_name(rng))
            ent.values[attr.key] = (num, text)
        entities.append(ent)
    return entities


def _fill(rng, words: int, pool: list[str], sentences: list[str], target: tuple, keep_first: bool) -> list[str]:
    """Insert filler sentences from ``pool`` until the passage has ``target`` (lo, hi) words, never more than
    MAX_WORDS. With ``keep_first`` the first sentence stays first; else fillers may go before it too."""
    pool = pool[:]
    rng.shuffle(pool)
    goal = rng.randrange(target[0], target[1] + 1)
    while pool and words < goal:
        s = pool.pop()
        n = len(s.split())
        if words + n > MAX_WORDS:
            continue
        sentences.insert(rng.randrange(1 if keep_first else 0, len(sentences) + 1), s)
        words += n
    return sentences


def _fillers(rng, ent: Entity, town: str, generic: bool = False) -> list[str]:
    tpl = load_templates()
    region = rng.choice(tpl.regions)
    own = [_sentence(_fmt(f, ent, R=region, T=town)) for f in ent.kind.fillers]
    return own + [_sentence(f.format(T=town, R=region)) for f in tpl.generic_fillers] if generic else own


def _answer_passage(rng, ent: Entity, attr: Attr, siblings: list[Entity]) -> str:
    town = _make_name(rng) + rng.choice(("ton", "by", "ford", "wick"))
    num, value = ent.values[attr.key]
    tpl = load_templates()
    fact = _fmt(rng.choice(attr.facts), ent, v=value, T=town, R=rng.choice(tpl.regions))
    lead = rng.choice(tpl.sources_say)
    if lead and not (fact.startswith(ent.label) and ent.label[0].isupper()):
        fact = fact[0].lower() + fact[1:]
    sentences = [_sentence(f"{lead} {fact}")]
    other_attrs = [a for a in ent.kind.attrs if a.key != attr.key]
    if rng.random() < P_MENTION:
        a1, a2 = rng.sample(other_attrs, 2)
        sentences.append(
            _sentence(
                rng.choice(
                    (
                        f"This page does not cover the {a1.word} or the {a2.word} of {ent.label}.",
                        f"Figures for the {a1.word} and {a2.word} of {ent.label} are given elsewhere.",
                        f"Readers also ask about the {a1.word} of {ent.label}, which is discussed separately.",
                    )
                )
            )
        )
    if siblings and attr.compare and num is not None and rng.random() < P_COMPARE:
        sib = rng.choice(siblings)
        other = sib.values[attr.key][0]
        if other is not None and other != num:
            phrase = attr.compare[0] if num > other else attr.compare[1]
            sentences.append(_sentence(f"{ent.label} {phrase} {sib.label}."))
    if siblings and rng.random() < P_EXTRA_SIBLING:
        sib = rng.choice(siblings)
        sentences.append(_sentence(f"It is often mentioned together with {sib.label}, not far away."))
    words = sum(len(s.split()) for s in sentences)
    return " ".join(
        _fill(rng, words, _fillers(rng, ent, town, generic=True), sentences, ANSWER_WORDS, keep_first=False)
    )


def _near_miss_passage(rng, ent: Entity, focus: Attr, siblings: list[Entity]) -> str:
    """A passage about ``focus`` of the entity that does not give its value (overview, FAQ, news).

    These look as relevant as the answer passage (same entity, same attribute words) but answer nothing,
    like the many MS MARCO passages that discuss a question without answering it.
    """
    town = _make_name(rng) + rng.choice(("ton", "by", "ford", "wick"))
    a1, a2 = rng.sample([a for a in ent.kind.attrs if a.key != focus.key], 2)
    article = "an" if ent.kind.noun[0] in "aeiou" else "a"
    w = focus.word
    q = rng.choice(focus.queries).format(q=ent.query)
    style = rng.randrange(4)
    if style == 0:
        first = (
            f"{ent.label} is {article} {ent.kind.noun} in {rng.choice(load_templates().regions)}. This overview of "
            f"{ent.label} describes its {w}, {a1.word} and {a2.word} in general terms."
        )
    elif style == 1:
        first = (
            f"Frequently asked questions about {ent.label}. People often search for '{q}', and for the {w} of "
            f"{ent.label} in general; the answers depend on the source you trust."
        )
    elif style == 2:
        sib = rng.choice(siblings) if siblings else ent
        first = (
            f"News from {town}: a new study of {ent.label} and {sib.label} looks again at the {w} of "
            f"{ent.label}. Results on its {w} are expected next year."
        )
    else:
        first = (
            f"The {w} of {ent.label} is a matter of some debate. Older sources and recent surveys of "
            f"{ent.label} give different figures for its {w}."
        )
    second = rng.choice(
        (
            f"Estimates of the {w} of {ent.label} vary widely.",
            f"Nobody has yet published a reliable figure for the {w} of {ent.label}.",
            f"Ask a local guide about the {w} of {ent.label}.",
        )
    )
    sentences = [_sentence(first), second]
    words = sum(len(s.split()) for s in sentences)
    return " ".join(_fill(rng, words, _fillers(rng, ent, town), sentences, NEAR_MISS_WORDS, keep_first=True))


def _clean(text: str) -> str:
    """No tabs or newlines inside a TSV field; single spaces."""
    return re.sub(r"\s+", " ", text).strip()


# ---- the data set ----------------------------------------------------------------------------------------
def _check_sizes(**sizes: int) -> None:
    lows = {"n_topics": 2, "passages_per_topic": 2, "n_train_queries": 1, "n_dev_queries": 1, "triples_per_query": 1}
    for name, val in sizes.items():
        if not isinstance(val, int) or val < lows[name]:
            raise ValueError(f"synthetic.{name} must be an integer >= {lows[name]}, got {val!r}")


def _make_passages(rng: random.Random, entities: list[Entity], passages_per_topic: int) -> list[Passage]:
    """``passages_per_topic`` distinct passages per entity: one answer per answered attribute (at most one per
    attribute), the rest near misses about those attributes."""
    by_kind: dict[str, list[int]] = {}
    for i, e in enumerate(entities):
        by_kind.setdefault(e.kind.name, []).append(i)
    passages: list[Passage] = []
    seen_text: set[str] = set()
    for ti, ent in enumerate(entities):
        siblings = [entities[j] for j in by_kind[ent.kind.name] if j != ti]
        n_general = max(1, round(passages_per_topic * SHARE_GENERAL))
        n_answer = min(len(ent.kind.attrs), passages_per_topic - n_general)
        n_general = passages_per_topic - n_answer
        answered = rng.sample(list(ent.kind.attrs), n_answer)
        focus = [answered[i % n_answer] for i in range(n_general)]  # near misses of answered attributes
        todo = [(a.key, a) for a in answered] + [(None, a) for a in focus]
        for key, attr in todo:
            for _ in range(50):
                text = _clean(
                    _answer_passage(rng, ent, attr, siblings) if key else _near_miss_passage(rng, ent, attr, siblings)
                )
                if text not in seen_text:
                    break
            seen_text.add(text)
            passages.append(Passage(text=text, topic=ti, attr=attr.key, role="answer" if key else "near_miss"))
    return passages


class _QueryDrawer:
    """Draws distinct query texts for answer passages from their attribute's query templates."""

    def __init__(self, rng: random.Random, passages: list[Passage], entities: list[Entity]):
        self.rng, self.passages, self.entities = rng, passages, entities
        self.attr_of = {(k.name, a.key): a for k in load_templates().kinds for a in k.attrs}
        self.used: set[str] = set()

    def templates(self, pi: int) -> list[str]:
        """All query texts that ask for passage ``pi`` (used or not)."""
        p = self.passages[pi]
        ent = self.entities[p.topic]
        return [t.format(q=ent.query) for t in self.attr_of[(ent.kind.name, p.attr)].queries]

    def draw(self, order: list[int], count: int) -> list[tuple[str, int]]:
        """Up to ``count`` new (query, passage) pairs, cycling over ``order`` with unused templates."""
        out: list[tuple[str, int]] = []
        while len(out) < count:
            before = len(out)
            for pi in order:
                if len(out) == count:
                    break
                templates = [t for t in self.templates(pi) if t not in self.used]
                if templates:
                    text = self.rng.choice(templates)
                    self.used.add(text)
                    out.append((text, pi))
            if len(out) == before:
                break
        return out


def _make_queries(rng, passages: list[Passage], entities: list[Entity], n_dev: int, n_train: int):
    """(dev, train, qids): lists of (query text, passage index) and ``n_dev + n_train`` distinct qids.

    Dev queries ask for distinct passages first; train queries use the other answer passages and reuse a dev
    query's passage (with another wording) only when the others are used up."""
    targets = [pi for pi, p in enumerate(passages) if p.role == "answer"]
    rng.shuffle(targets)
    drawer = _QueryDrawer(rng, passages, entities)
    n_total = n_dev + n_train
    capacity = sum(len(drawer.templates(pi)) for pi in targets)
    if n_total > capacity:
        raise ValueError(
            f"synthetic: {n_total} queries requested (n_train_queries + n_dev_queries) but the "
            f"{len(targets)} answer passages allow at most {capacity} distinct queries; raise n_topics or "
            "passages_per_topic"
        )
    qids = rng.sample(range(1, 1_200_000), n_total)
    dev = drawer.draw(targets[:n_dev], n_dev)
    dev += drawer.draw(targets, n_dev - len(dev))
    train = drawer.draw(targets[n_dev:], n_train)
    train += drawer.draw(targets, n_train - len(train))
    return dev, train, qids


def _bm25_triples(rng, passages: list[Passage], train: list[tuple[str, int]], per_query: int, pool_size: int):
    """[(query, positive text, negative text)]: ``per_query`` negatives per training query, drawn from the BM25
    top-``pool_size`` (Anserini's MS MARCO k1/b; same entity or shared words), never the positive."""
    from ftstudy.bm25 import ANSERINI_B, ANSERINI_K1, bm25_search, build_bm25

    n = len(passages)
    index = build_bm25([p.text for p in passages], k1=ANSERINI_K1, b=ANSERINI_B)
    # bm25s' own order of equal scores (the pool's order feeds rng.sample): the data stay the same bytes as before
    # bm25_search ordered ties by row (a corpus this small is always scored by the numpy backend).
    scores, rows = bm25_search(index, [text for text, _ in train], min(n, pool_size + 1), order_ties=False)
    triples = []
    for (text, pi), row_scores, row_ids in zip(train, scores, rows, strict=True):
        pool = [int(j) for sc, j in zip(row_scores, row_ids, strict=True) if sc > 0 and j != pi][:pool_size]
        if len(pool) < per_query:  # too few word matches: fall back to the same topic
            extra = [j for j in range(n) if j != pi and passages[j].topic == passages[pi].topic and j not in pool]
            pool += extra
        for j in rng.sample(pool, min(per_query, len(pool))):
            triples.append((text, passages[pi].text, passages[j].text))
    return triples


def generate(
    seed: int,
    n_topics: int = 60,
    passages_per_topic: int = 16,
    n_train_queries: int = 300,
    n_dev_queries: int = 200,
    triples_per_query: int = 4,
    negative_pool: int = 20,
) -> SyntheticDataset:
    """Build the data set; the same arguments give the same data set, byte for byte.

    Every query has exactly one judged positive passage (relevance 1). Train and dev queries are disjoint
    (distinct qids and distinct texts) and, while enough answer passages exist, target distinct passages.
    Each training query gets ``triples_per_query`` triples whose negatives are drawn from the
    ``negative_pool`` passages that BM25 scores highest for the query, excluding its positive.
    """
    _check_sizes(n_topics=n_topics, passages_per_topic=passages_per_topic, n_train_queries=n_train_queries,
                 n_dev_queries=n_dev_queries, triples_per_query=triples_per_query)  # fmt: skip
    rng = random.Random(seed)
    entities = _make_entities(rng, n_topics)
    passages = _make_passages(rng, entities, passages_per_topic)
    # pids: a shuffled numbering, so that a topic's passages are not neighbours in the collection
    order = list(range(len(passages)))
    rng.shuffle(order)
    pid_of = {pi: pid for pid, pi in enumerate(order)}
    dev, train, qids = _make_queries(rng, passages, entities, n_dev_queries, n_train_queries)
    train_qids = qids[n_dev_queries:]
    return SyntheticDataset(
        collection=sorted((pid_of[pi], p.text) for pi, p in enumerate(passages)),
        train_queries=[(q, t) for q, (t, _) in zip(train_qids, train, strict=False)],
        train_qrels=[(q, pid_of[pi]) for q, (_, pi) in zip(train_qids, train, strict=False)],
        dev_queries=[(q, t) for q, (t, _) in zip(qids, dev, strict=False)],
        dev_qrels=[(q, pid_of[pi]) for q, (_, pi) in zip(qids, dev, strict=False)],
        triples=_bm25_triples(rng, passages, train, triples_per_query, negative_pool),
        topics={pid_of[pi]: p.topic for pi, p in enumerate(passages)},
        roles={pid_of[pi]: (p.role, p.attr) for pi, p in enumerate(passages)},
        entities=[e.label for e in entities],
    )


def write_dataset(ds: SyntheticDataset, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the six official files into ``out_dir``, each atomically. Returns name -> path."""
    out = Path(out_dir)
    paths = {}
    for name, text in ds.tsv_texts().items():
        path = out / name
        with atomic_path(path) as tmp:
            tmp.write_bytes(text.encode("utf-8"))
        paths[name] = path
    return paths


# ---- measuring the difficulty ----------------------------------------------------------------------------
def difficulty(ds: SyntheticDataset, model, batch_size: int = 64, seed: int = 0) -> dict:
    """How hard the dev queries are for ``model`` (a SentenceTransformer), by exact cosine search over the
    whole collection: MRR@10, median rank of the positive, and the mean query cosine of hard negatives (ranks
    6-50 with the positive left out) against as many random passages (positive left out)."""
    import numpy as np

    from ftstudy.encode import encode_texts

    pids = np.array([p for p, _ in ds.collection])
    corpus = encode_texts(model, [t for _, t in ds.collection], batch_size=batch_size)
    queries = encode_texts(model, [t for _, t in ds.dev_queries], batch_size=batch_size)
    positive = dict(ds.dev_qrels)
    scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1, kind="stable")
    rng = np.random.default_rng(seed)
    ranks, hard, rand = [], [], []
    for i, (qid, _) in enumerate(ds.dev_queries):
        ranks.append(1 + int(np.flatnonzero(pids[order[i]] == positive[qid])[0]))
        others = order[i][pids[order[i]] != positive[qid]]
        hard.append(float(scores[i, others[5:50]].mean()))
        rand.append(float(scores[i, rng.choice(others, size=min(45, len(others)), replace=False)].mean()))
    ranks = np.array(ranks)
    return {
        "n_passages": len(pids),
        "n_dev_queries": len(ranks),
        "mrr@10": float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0))),
        "median_rank": float(np.median(ranks)),
        "cos_hard": float(np.mean(hard)),
        "cos_random": float(np.mean(rand)),
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m ftstudy.synthetic --seed N [--out DIR] [--measure] [sizes]``: write and/or measure a data set.
    The sizes default to :func:`generate`'s (the embedded default's)."""
    import argparse
    import inspect
    import time

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--seed", type=int, required=True)
    sizes = {n: p.default for n, p in inspect.signature(generate).parameters.items() if n != "seed"}
    for name, default in sizes.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    ap.add_argument("--out", help="folder to write the six TSV files into")
    ap.add_argument("--measure", action="store_true", help="difficulty for the real base model (offline copy)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    ds = generate(args.seed, **{name: getattr(args, name) for name in sizes})
    report = {"seed": args.seed, "generate_s": round(time.perf_counter() - start, 3)}
    if args.out:
        write_dataset(ds, args.out)
    if args.measure:
        from ftstudy.models import load_model, resolve_model

        model = load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device="cpu")
        report.update({k: round(v, 4) for k, v in difficulty(ds, model).items()})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
