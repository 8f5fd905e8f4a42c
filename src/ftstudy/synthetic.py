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

# ---- word lists ------------------------------------------------------------------------------------------
_PREFIXES = (
    "tar vel mor sal bren cal dor ev fen gal hal kel lor mar nor or pel quen ros sev tor ul var wen yar zel "
    "ash bel cor dun el har ist jor lun mir nar ost rav sil thal vor"
).split()
_SUFFIXES = "nel ora van dane wick ith mere ton ley ric sor ane ett holm ard en is ow ia ura".split()
_MONTHS = "January February March April May June July August September October November December".split()
_REGIONS = (
    "the Halden Valley",
    "the northern lowlands",
    "Norrow province",
    "the Essing plateau",
    "the eastern highlands",
    "the Calder basin",
    "the southern coast",
    "the Brisk uplands",
    "the Veyn lake district",
    "the western plains",
)
_GENERIC_FILLERS = (
    "The figures on this page were last checked in the spring.",
    "The tourist office in {T} has maps and leaflets for visitors.",
    "Much of {R} is quiet outside the summer holidays.",
    "A local history society publishes a yearbook with more details.",
    "Photographs from the early twentieth century show how little has changed.",
    "The regional newspaper runs a series about the area every autumn.",
    "Schools from {T} often organise trips to the area.",
)
_SOURCES_SAY = (
    "According to the regional survey,",
    "Official figures show that",
    "Most guidebooks agree that",
    "As local records note,",
    "",
    "",
    "",
)


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


def _make_name(rng) -> str:
    return (rng.choice(_PREFIXES) + rng.choice(_SUFFIXES)).capitalize()


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


_KINDS = (
    Kind(
        name="river",
        entity="the {N} River",
        query_form="{n} river",
        noun="river",
        fillers=(
            "{E} flows through {R} and past several small villages.",
            "Kayakers and anglers use the river throughout the summer months.",
            "Water quality in {E} has improved a great deal since the 1990s.",
            "Several nature reserves line its banks, and otters and herons are often seen there.",
            "The valley around the river is mostly farmland and mixed forest.",
            "Boats can travel only on the lower part of the river.",
            "A long-distance footpath follows the river for much of its course.",
            "The river was an important trade route in the Middle Ages.",
            "Mills and small factories once stood along its banks.",
        ),
        attrs=(
            Attr(
                "length",
                _num(80, 2400, 1, "{:,} kilometres"),
                ("{E} is {v} long from its source to its mouth.", "{E} runs for about {v} in total."),
                ("how long is the {q}", "{q} length", "what is the length of the {q} in km", "length of {q}"),
                "length",
                ("is longer than", "is shorter than"),
            ),
            Attr(
                "source",
                _pick(("Lake {N}", "the {N} Hills", "a spring below {N} Peak", "the {N} marshes")),
                ("{E} rises in {v}, high above {R}.", "The source of {E} is {v}."),
                ("where does the {q} start", "source of the {q}", "where is the source of the {q}"),
                "source",
            ),
            Attr(
                "mouth",
                _pick(("the {N} Sea", "{N} Bay", "the {N} estuary", "the Gulf of {N}")),
                ("{E} empties into {v} near the port of {T}.", "After its long journey, {E} ends in {v}."),
                ("where does the {q} end", "what does the {q} flow into", "{q} mouth"),
                "mouth",
            ),
            Attr(
                "depth",
                _num(3, 45, 1, "{} metres"),
                ("At its deepest point {E} is {v} deep.", "{E} reaches a maximum depth of {v}."),
                ("how deep is the {q}", "{q} maximum depth", "what is the depth of the {q}"),
                "depth",
                ("is deeper than", "is shallower than"),
            ),
            Attr(
                "discharge",
                _num(40, 9000, 10, "{:,} cubic metres per second"),
                ("{E} carries an average flow of {v}.", "The average discharge of {E} is {v}."),
                ("what is the average discharge of the {q}", "how much water flows in the {q}", "{q} flow rate"),
                "flow",
                ("carries more water than", "carries less water than"),
            ),
            Attr(
                "fish",
                _pick(("brown trout", "pike", "sturgeon", "grayling", "perch", "salmon", "catfish", "eel")),
                (
                    "The most common fish in {E} is the {v}, which anglers catch all year.",
                    "{E} is best known among anglers for its {v}.",
                ),
                ("what fish live in the {q}", "what kind of fish are in the {q}", "{q} fishing species"),
                "fish",
            ),
            Attr(
                "tributary",
                _name_in("the {N} stream"),
                (
                    "The largest tributary of {E} is {v}, which joins it at {T}.",
                    "{E} is fed mainly by {v}.",
                ),
                ("what is the largest tributary of the {q}", "{q} main tributary", "what river flows into the {q}"),
                "tributaries",
            ),
            Attr(
                "bridges",
                _num(3, 60, 1, "{}"),
                ("There are {v} bridges across {E} along its whole course.", "{v} bridges cross {E}."),
                ("how many bridges cross the {q}", "number of bridges over the {q}"),
                "bridges",
                ("has more bridges than", "has fewer bridges than"),
            ),
            Attr(
                "flood",
                _pick(_MONTHS),
                ("{E} usually floods in {v}, when the snow melts in the hills.", "Floods on {E} peak in {v}."),
                ("when does the {q} flood", "{q} flood season", "what month does the {q} flood"),
                "floods",
            ),
            Attr(
                "dam",
                _num(1890, 2015, 1, "{}"),
                ("The main dam on {E} was completed in {v} and supplies power to {T}.", "{E} was dammed in {v}."),
                ("when was the dam on the {q} built", "{q} dam year built"),
                "dam",
            ),
            Attr(
                "name",
                _pick(("an old word for slow water", "a medieval saint", "a local word meaning silver")),
                ("{E} takes its name from {v}.", "The name of {E} comes from {v}."),
                ("why is it called the {q}", "{q} name meaning", "where does the name {q} come from"),
                "name",
            ),
        ),
    ),
    Kind(
        name="mountain",
        entity="Mount {N}",
        query_form="mount {n}",
        noun="mountain",
        fillers=(
            "{E} rises above {R} and can be seen from far away on clear days.",
            "Its slopes are covered in pine forest up to the tree line.",
            "Hikers are advised to carry warm clothing even in summer.",
            "The mountain is part of a protected national park.",
            "Mountain goats and eagles live on its upper slopes.",
            "A cable car runs to a viewpoint halfway up the mountain.",
            "The weather near the summit can change within minutes.",
            "Several mountain huts offer beds and meals to walkers.",
            "The nearest village, {T}, is a popular base for climbers.",
        ),
        attrs=(
            Attr(
                "height",
                _num(1200, 7800, 1, "{:,} metres"),
                ("{E} is {v} high.", "The summit of {E} stands {v} above sea level."),
                ("how tall is {q}", "{q} height", "what is the elevation of {q}", "how high is {q} in meters"),
                "height",
                ("is higher than", "is lower than"),
            ),
            Attr(
                "ascent",
                _num(1786, 1975, 1, "{}"),
                ("{E} was first climbed in {v} by a team from {T}.", "The first ascent of {E} was made in {v}."),
                ("when was {q} first climbed", "first ascent of {q}", "who first climbed {q} and when"),
                "first ascent",
            ),
            Attr(
                "climb",
                _num(4, 30, 1, "{} hours"),
                ("Climbing {E} takes about {v} for a fit walker.", "A round trip to the top of {E} takes {v}."),
                ("how long does it take to climb {q}", "{q} hiking time", "how many hours to climb {q}"),
                "climbing time",
                ("takes longer to climb than", "is quicker to climb than"),
            ),
            Attr(
                "season",
                _pick(("June and July", "July and August", "late August and September", "May and June")),
                ("The best time to climb {E} is {v}.", "Most climbers attempt {E} in {v}."),
                ("best time to climb {q}", "when is the best season to hike {q}", "{q} climbing season"),
                "climbing season",
            ),
            Attr(
                "temperature",
                _num(-40, 5, 1, "{} degrees Celsius"),
                ("The average temperature at the summit of {E} is {v}.", "At the top of {E} it is about {v}."),
                ("how cold is it on top of {q}", "{q} summit temperature", "average temperature at {q} summit"),
                "temperature",
                ("is warmer at the top than", "is colder at the top than"),
            ),
            Attr(
                "rock",
                _pick(("granite", "limestone", "basalt", "gneiss", "slate", "sandstone")),
                ("{E} is made mostly of {v}.", "The rock of {E} is largely {v}, formed millions of years ago."),
                ("what type of rock is {q} made of", "{q} geology", "what is {q} made of"),
                "rock",
            ),
            Attr(
                "glaciers",
                _num(0, 14, 1, "{}"),
                ("There are {v} glaciers on {E}.", "{E} still carries {v} small glaciers."),
                ("how many glaciers are on {q}", "{q} glaciers number"),
                "glaciers",
                ("has more glaciers than", "has fewer glaciers than"),
            ),
            Attr(
                "range",
                _name_in("the {N} Range"),
                ("{E} belongs to {v}.", "{E} is the best-known peak of {v}."),
                ("what mountain range is {q} in", "{q} mountain range", "which range does {q} belong to"),
                "range",
            ),
            Attr(
                "camp",
                _num(800, 4200, 10, "{:,} metres"),
                ("The base camp for {E} lies at {v}.", "Climbers start {E} from a base camp at {v}."),
                ("what is the elevation of {q} base camp", "{q} base camp height"),
                "base camp",
            ),
            Attr(
                "deaths",
                _num(0, 120, 1, "{}"),
                ("{v} climbers have died on {E} since records began.", "{E} has claimed {v} lives."),
                ("how many people have died on {q}", "{q} death toll", "deaths on {q}"),
                "accidents",
                ("has claimed more lives than", "has claimed fewer lives than"),
            ),
        ),
    ),
    Kind(
        name="compound",
        entity="{N}ane",
        query_form="{n}ane",
        noun="compound",
        fillers=(
            "{E} is an organic compound produced in {R}.",
            "It is handled in closed containers in most laboratories.",
            "Chemists first described the compound in a short paper.",
            "The substance is sold in several grades of purity.",
            "Safety data sheets list it as a flammable liquid.",
            "Industrial demand for the compound has grown in recent years.",
            "It is usually shipped in steel drums.",
            "Students meet the compound in introductory chemistry courses.",
        ),
        attrs=(
            Attr(
                "boiling",
                _num(40, 390, 1, "{} degrees Celsius"),
                ("{E} boils at {v}.", "The boiling point of {E} is {v} at normal pressure."),
                ("what is the boiling point of {q}", "{q} boiling point", "at what temperature does {q} boil"),
                "boiling point",
                ("boils at a higher temperature than", "boils at a lower temperature than"),
            ),
            Attr(
                "melting",
                _num(-120, 200, 1, "{} degrees Celsius"),
                ("{E} melts at {v}.", "The melting point of {E} is {v}."),
                ("what is the melting point of {q}", "{q} melting point", "at what temperature does {q} melt"),
                "melting point",
                ("melts at a higher temperature than", "melts at a lower temperature than"),
            ),
            Attr(
                "density",
                _dec(0.6, 3.5, 2),
                ("{E} has a density of {v} grams per cubic centimetre.", "The density of {E} is {v} g/cm3."),
                ("what is the density of {q}", "{q} density g/cm3", "how dense is {q}"),
                "density",
                ("is denser than", "is less dense than"),
            ),
            Attr(
                "colour",
                _pick(("colourless", "pale yellow", "light green", "deep red", "milky white", "amber")),
                ("{E} is a {v} liquid at room temperature.", "Pure {E} is {v}."),
                ("what color is {q}", "{q} appearance", "is {q} colorless"),
                "colour",
            ),
            Attr(
                "use",
                _pick(("as a solvent in paint", "to make plastics", "as a cleaning agent", "in perfumes")),
                ("{E} is mainly used {v}.", "The main use of {E} is {v}."),
                ("what is {q} used for", "{q} uses", "uses of {q} in industry"),
                "uses",
            ),
            Attr(
                "discovery",
                _num(1801, 1960, 1, "{}"),
                ("{E} was discovered in {v} by a chemist working in {T}.", "{E} was first made in {v}."),
                ("who discovered {q}", "when was {q} discovered", "{q} discovery year"),
                "discovery",
            ),
            Attr(
                "solubility",
                _num(1, 900, 1, "{} grams per litre"),
                ("{E} dissolves in water up to {v}.", "The solubility of {E} in water is {v}."),
                ("is {q} soluble in water", "{q} solubility", "how much {q} dissolves in water"),
                "solubility",
                ("dissolves more readily than", "dissolves less readily than"),
            ),
            Attr(
                "flash",
                _num(-30, 180, 1, "{} degrees Celsius"),
                ("The flash point of {E} is {v}.", "{E} can catch fire above {v}, its flash point."),
                ("what is the flash point of {q}", "{q} flash point", "is {q} flammable"),
                "flash point",
            ),
            Attr(
                "mass",
                _dec(40, 400, 2),
                ("{E} has a molar mass of {v} grams per mole.", "The molar mass of {E} is {v} g/mol."),
                ("what is the molar mass of {q}", "{q} molecular weight", "{q} molar mass g/mol"),
                "molar mass",
                ("is heavier than", "is lighter than"),
            ),
            Attr(
                "limit",
                _num(1, 500, 1, "{} parts per million"),
                ("Workers may be exposed to {E} up to {v} over an eight-hour shift.", "The limit is {v} for {E}."),
                ("what is the exposure limit for {q}", "is {q} toxic", "{q} safe exposure level"),
                "exposure limit",
            ),
        ),
    ),
    Kind(
        name="animal",
        entity="the {N} {K}",
        query_form="{n} {k}",
        noun="animal",
        fillers=(
            "The {N} {K} is found across {R}.",
            "It is most active at dawn and dusk.",
            "Researchers have studied the species for several decades.",
            "The animal is shy and rarely seen by walkers.",
            "Young animals stay with their mother for several months.",
            "Its fur or feathers change colour with the seasons.",
            "Local people have many stories about the animal.",
            "It is one of the most photographed species in the region.",
        ),
        attrs=(
            Attr(
                "lifespan",
                _num(2, 40, 1, "{} years"),
                ("The {N} {K} lives for about {v} in the wild.", "The average lifespan of the {N} {K} is {v}."),
                ("how long does a {q} live", "{q} lifespan", "average life expectancy of a {q}"),
                "lifespan",
                ("lives longer than", "has a shorter life than"),
            ),
            Attr(
                "weight",
                _dec(0.2, 180, 1),
                ("An adult {N} {K} weighs around {v} kilograms.", "The {N} {K} weighs {v} kg on average."),
                ("how much does a {q} weigh", "{q} weight kg", "average weight of a {q}"),
                "weight",
                ("is heavier than", "is lighter than"),
            ),
            Attr(
                "diet",
                _pick(("insects and worms", "seeds and berries", "small fish", "grass and leaves", "mice")),
                ("The {N} {K} feeds mainly on {v}.", "The diet of the {N} {K} consists largely of {v}."),
                ("what does a {q} eat", "{q} diet", "what do {q}s eat in the wild"),
                "diet",
            ),
            Attr(
                "habitat",
                _pick(("wet meadows", "old pine forest", "rocky coasts", "river banks", "dry grassland")),
                ("The {N} {K} lives in {v}.", "The natural habitat of the {N} {K} is {v}."),
                ("where does the {q} live", "{q} habitat", "what habitat does a {q} need"),
                "habitat",
            ),
            Attr(
                "gestation",
                _num(12, 300, 1, "{} days"),
                ("Young {N} {K}s are born after about {v}.", "The breeding cycle of the {N} {K} lasts {v}."),
                ("how long is a {q} pregnant", "{q} gestation period", "{q} incubation time"),
                "breeding cycle",
                ("breeds more slowly than", "breeds faster than"),
            ),
            Attr(
                "speed",
                _num(5, 90, 1, "{} kilometres per hour"),
                ("The {N} {K} can reach {v} when it flees.", "The top speed of the {N} {K} is {v}."),
                ("how fast can a {q} run", "{q} top speed", "{q} speed km/h"),
                "speed",
                ("is faster than", "is slower than"),
            ),
            Attr(
                "population",
                _num(200, 90000, 10, "{:,}"),
                ("About {v} {N} {K}s live in the wild today.", "The wild population of the {N} {K} is {v}."),
                ("how many {q}s are left", "{q} population", "how many {q}s are there in the world"),
                "numbers",
                ("is more numerous than", "is rarer than"),
            ),
            Attr(
                "predators",
                _pick(("foxes and owls", "eagles", "wolves", "large snakes", "lynx and martens")),
                ("The main predators of the {N} {K} are {v}.", "The {N} {K} is hunted by {v}."),
                ("what eats the {q}", "{q} predators", "what animals hunt the {q}"),
                "predators",
            ),
            Attr(
                "status",
                _pick(("least concern", "near threatened", "vulnerable", "endangered")),
                ("The {N} {K} is listed as {v}.", "Conservationists class the {N} {K} as {v}."),
                ("is the {q} endangered", "{q} conservation status"),
                "protection",
            ),
            Attr(
                "length",
                _num(8, 250, 1, "{} centimetres"),
                ("An adult {N} {K} is about {v} long.", "The {N} {K} grows to a length of {v}."),
                ("how big is a {q}", "{q} size", "how long is a {q} in cm"),
                "size",
                ("is bigger than", "is smaller than"),
            ),
        ),
    ),
    Kind(
        name="town",
        entity="{N}",
        query_form="{n}",
        noun="town",
        fillers=(
            "{E} is a market town in {R}.",
            "The old town has narrow streets and a covered market.",
            "Tourists come for the museums and the walks nearby.",
            "A weekly farmers' market is held on the main square.",
            "The town has a railway station with regular trains.",
            "Many residents commute to larger cities nearby.",
            "The local football club plays in the regional league.",
            "Several festivals take place in the town each year.",
        ),
        attrs=(
            Attr(
                "population",
                _num(800, 250000, 10, "{:,}"),
                ("{E} has a population of {v}.", "About {v} people live in {E}."),
                ("what is the population of {q}", "{q} population", "how many people live in {q}"),
                "population",
                ("is larger than", "is smaller than"),
            ),
            Attr(
                "founded",
                _num(850, 1900, 1, "{}"),
                ("{E} was founded in {v}.", "The town of {E} dates from {v}, when it received its charter."),
                ("when was {q} founded", "how old is {q}", "{q} founded year"),
                "history",
                ("is younger than", "is older than"),
            ),
            Attr(
                "elevation",
                _num(2, 2100, 1, "{:,} metres"),
                ("{E} lies at an elevation of {v}.", "{E} sits {v} above sea level."),
                ("what is the elevation of {q}", "{q} altitude", "how high above sea level is {q}"),
                "altitude",
                ("lies higher than", "lies lower than"),
            ),
            Attr(
                "july",
                _num(9, 34, 1, "{} degrees Celsius"),
                ("In July the average temperature in {E} is {v}.", "Summers in {E} average {v}."),
                ("what is the weather like in {q} in summer", "{q} july temperature", "how hot is {q} in summer"),
                "summer weather",
                ("is warmer than", "is cooler than"),
            ),
            Attr(
                "rainfall",
                _num(300, 2400, 10, "{:,} millimetres"),
                ("{E} gets {v} of rain a year.", "Annual rainfall in {E} is about {v}."),
                ("how much rain does {q} get", "{q} annual rainfall", "does it rain a lot in {q}"),
                "rainfall",
                ("is wetter than", "is drier than"),
            ),
            Attr(
                "industry",
                _pick(("fishing", "wool weaving", "brewing", "furniture making", "tourism", "paper milling")),
                ("The main industry of {E} is {v}.", "Most jobs in {E} depend on {v}."),
                ("what is {q} known for", "{q} main industry", "what do people in {q} do for work"),
                "industry",
            ),
            Attr(
                "landmark",
                _name_in("the {N} Tower"),
                ("The best-known landmark in {E} is {v}.", "Visitors to {E} come to see {v}."),
                ("what to see in {q}", "{q} famous landmark", "things to do in {q}"),
                "sights",
            ),
            Attr(
                "distance",
                _num(12, 640, 1, "{} kilometres"),
                ("{E} is {v} from the capital.", "The capital lies {v} away from {E}."),
                ("how far is {q} from the capital", "{q} distance to capital", "how many km from capital to {q}"),
                "distance",
                ("is farther from the capital than", "is closer to the capital than"),
            ),
            Attr(
                "area",
                _dec(3, 180, 1),
                ("{E} covers an area of {v} square kilometres.", "The area of {E} is {v} km2."),
                ("how big is {q}", "{q} area sq km", "what is the area of {q}"),
                "area",
                ("covers more ground than", "covers less ground than"),
            ),
            Attr(
                "zip",
                _num(10000, 99999, 1, "{}"),
                ("The postal code of {E} is {v}.", "Letters to {E} use the postcode {v}."),
                ("what is the zip code for {q}", "{q} postal code"),
                "postcode",
            ),
        ),
    ),
    Kind(
        name="dish",
        entity="{N} {K}",
        query_form="{n} {k}",
        noun="dish",
        fillers=(
            "{E} is a traditional dish from {R}.",
            "Recipes differ from one family to the next.",
            "It is often made in large batches and shared.",
            "Cookbooks from the region give many versions of it.",
            "Restaurants in the area serve it all year round.",
            "It keeps well and tastes better the next day, many say.",
            "Home cooks often add their own spices.",
            "The dish became popular far beyond the region in the last century.",
        ),
        attrs=(
            Attr(
                "calories",
                _num(120, 1100, 10, "{}"),
                ("One serving of {E} has about {v} calories.", "A portion of {E} contains {v} kilocalories."),
                ("how many calories in {q}", "{q} calories per serving", "is {q} healthy"),
                "calories",
                ("has more calories than", "has fewer calories than"),
            ),
            Attr(
                "cooktime",
                _num(15, 300, 5, "{} minutes"),
                ("{E} takes about {v} to cook.", "Cooking {E} properly takes {v}."),
                ("how long does it take to cook {q}", "{q} cooking time", "how long to bake {q}"),
                "cooking time",
                ("takes longer to cook than", "is quicker to cook than"),
            ),
            Attr(
                "ingredients",
                _pick(("lamb and barley", "potatoes and leeks", "smoked fish and cream", "lentils and onions")),
                ("The main ingredients of {E} are {v}.", "{E} is made with {v}."),
                ("what is in {q}", "{q} ingredients", "what is {q} made of"),
                "ingredients",
            ),
            Attr(
                "origin",
                _pick(_REGIONS),
                ("{E} comes originally from {v}.", "{E} was first cooked in {v}."),
                ("where does {q} come from", "{q} origin", "what country is {q} from"),
                "origin",
            ),
            Attr(
                "oven",
                _num(140, 240, 5, "{} degrees Celsius"),
                ("{E} is baked at {v}.", "Set the oven to {v} for {E}."),
                ("what temperature to cook {q}", "{q} oven temperature"),
                "oven temperature",
            ),
            Attr(
                "served",
                _pick(("rye bread", "pickled cabbage", "boiled potatoes", "a glass of cider", "fresh herbs")),
                ("{E} is usually served with {v}.", "People eat {E} with {v}."),
                ("what to serve with {q}", "what goes with {q}", "{q} side dish"),
                "side dishes",
            ),
            Attr(
                "shelf",
                _num(1, 10, 1, "{} days"),
                ("{E} keeps in the fridge for {v}.", "Cooked {E} can be stored for {v}."),
                ("how long does {q} last in the fridge", "{q} shelf life", "can you freeze {q}"),
                "storage",
                ("keeps longer than", "spoils sooner than"),
            ),
            Attr(
                "occasion",
                _pick(("weddings", "the harvest festival", "New Year", "Sunday lunch", "midsummer")),
                ("{E} is traditionally eaten at {v}.", "Families prepare {E} for {v}."),
                ("when is {q} eaten", "{q} tradition", "what holiday is {q} served"),
                "tradition",
            ),
            Attr(
                "protein",
                _num(2, 60, 1, "{} grams"),
                ("A serving of {E} contains {v} of protein.", "{E} provides {v} of protein per portion."),
                ("how much protein is in {q}", "{q} protein per serving"),
                "protein",
                ("has more protein than", "has less protein than"),
            ),
            Attr(
                "price",
                _dec(2, 30, 2),
                ("A plate of {E} costs about {v} euros in restaurants.", "{E} sells for {v} euros a portion."),
                ("how much does {q} cost", "{q} price", "{q} price per plate"),
                "price",
                ("costs more than", "costs less than"),
            ),
        ),
    ),
)
_ANIMAL_KINDS = ("fox", "finch", "lizard", "deer", "owl", "frog", "hare", "seal", "beetle", "stork")
_DISH_KINDS = ("stew", "pie", "bread", "soup", "cake", "dumplings", "pudding", "pasty")


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
    kinds = list(_KINDS)
    # Entities of one kind share name stems in small families (Tarnel River, Tarvan River ...), so that a
    # sibling's passage about the same attribute is a near duplicate of the answer.
    n_of_kind = [len(range(k, n_topics, len(kinds))) for k in range(len(kinds))]
    stems = [rng.sample(_PREFIXES, max(1, -(-n // NAME_FAMILY))) for n in n_of_kind]
    for i in range(n_topics):
        kind = kinds[i % len(kinds)]
        for _ in range(1000):
            name = (rng.choice(stems[i % len(kinds)]) + rng.choice(_SUFFIXES)).capitalize()
            if name not in used:
                break
        else:  # pragma: no cover - 840 names, at most n_topics drawn
            raise ValueError(f"synthetic.n_topics={n_topics}: ran out of distinct invented names")
        used.add(name)
        sub = ""
        if kind.name == "animal":
            sub = rng.choice(_ANIMAL_KINDS)
        elif kind.name == "dish":
            sub = rng.choice(_DISH_KINDS)
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
    region = rng.choice(_REGIONS)
    own = [_sentence(_fmt(f, ent, R=region, T=town)) for f in ent.kind.fillers]
    return own + [_sentence(f.format(T=town, R=region)) for f in _GENERIC_FILLERS] if generic else own


def _answer_passage(rng, ent: Entity, attr: Attr, siblings: list[Entity]) -> str:
    town = _make_name(rng) + rng.choice(("ton", "by", "ford", "wick"))
    num, value = ent.values[attr.key]
    fact = _fmt(rng.choice(attr.facts), ent, v=value, T=town, R=rng.choice(_REGIONS))
    lead = rng.choice(_SOURCES_SAY)
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
            f"{ent.label} is {article} {ent.kind.noun} in {rng.choice(_REGIONS)}. This overview of {ent.label} "
            f"describes its {w}, {a1.word} and {a2.word} in general terms."
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
    for name, val, low in (
        ("n_topics", n_topics, 2),
        ("passages_per_topic", passages_per_topic, 2),
        ("n_train_queries", n_train_queries, 1),
        ("n_dev_queries", n_dev_queries, 1),
        ("triples_per_query", triples_per_query, 1),
    ):
        if not isinstance(val, int) or val < low:
            raise ValueError(f"synthetic.{name} must be an integer >= {low}, got {val!r}")
    rng = random.Random(seed)
    entities = _make_entities(rng, n_topics)
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

    # pids: a shuffled numbering, so that a topic's passages are not neighbours in the collection
    order = list(range(len(passages)))
    rng.shuffle(order)
    pid_of = {pi: pid for pid, pi in enumerate(order)}
    collection = sorted((pid_of[pi], p.text) for pi, p in enumerate(passages))

    # queries: each answer passage can be asked for with several templates; dev first, then train
    targets = [pi for pi, p in enumerate(passages) if p.role == "answer"]
    rng.shuffle(targets)
    attr_of = {(k.name, a.key): a for k in _KINDS for a in k.attrs}
    used_q: set[str] = set()
    n_total = n_dev_queries + n_train_queries
    capacity = sum(len(attr_of[(entities[passages[pi].topic].kind.name, passages[pi].attr)].queries) for pi in targets)
    if n_total > capacity:
        raise ValueError(
            f"synthetic: {n_total} queries requested (n_train_queries + n_dev_queries) but the "
            f"{len(targets)} answer passages allow at most {capacity} distinct queries; raise n_topics or "
            "passages_per_topic"
        )
    qids = rng.sample(range(1, 1_200_000), n_total)

    def draw(order: list[int], count: int) -> list[tuple[str, int]]:
        """Up to ``count`` new (query, passage) pairs, cycling over ``order`` with unused templates."""
        out: list[tuple[str, int]] = []
        while len(out) < count:
            before = len(out)
            for pi in order:
                if len(out) == count:
                    break
                p = passages[pi]
                ent = entities[p.topic]
                templates = [t.format(q=ent.query) for t in attr_of[(ent.kind.name, p.attr)].queries]
                templates = [t for t in templates if t not in used_q]
                if templates:
                    text = rng.choice(templates)
                    used_q.add(text)
                    out.append((text, pi))
            if len(out) == before:
                break
        return out

    # dev queries ask for distinct passages first; train queries use the other answer passages and reuse a
    # dev query's passage (with another wording) only when the others are used up
    dev = draw(targets[:n_dev_queries], n_dev_queries)
    dev += draw(targets, n_dev_queries - len(dev))
    train = draw(targets[n_dev_queries:], n_train_queries)
    train += draw(targets, n_train_queries - len(train))
    dev_queries = [(qids[i], t) for i, (t, _) in enumerate(dev)]
    dev_qrels = [(qids[i], pid_of[pi]) for i, (_, pi) in enumerate(dev)]
    train_queries = [(qids[n_dev_queries + i], t) for i, (t, _) in enumerate(train)]
    train_qrels = [(qids[n_dev_queries + i], pid_of[pi]) for i, (_, pi) in enumerate(train)]

    # triples: negatives from the BM25 top-`negative_pool` (same entity or shared words), never the positive
    from ftstudy.bm25 import bm25_search, build_bm25

    n = len(passages)
    index = build_bm25([p.text for p in passages], k1=0.9, b=0.4)
    scores, rows = bm25_search(index, [text for text, _ in train], min(n, negative_pool + 1))
    triples = []
    for (text, pi), row_scores, row_ids in zip(train, scores, rows, strict=True):
        pool = [int(j) for sc, j in zip(row_scores, row_ids, strict=True) if sc > 0 and j != pi][:negative_pool]
        if len(pool) < triples_per_query:  # too few word matches: fall back to the same topic
            extra = [j for j in range(n) if j != pi and passages[j].topic == passages[pi].topic and j not in pool]
            pool += extra
        for j in rng.sample(pool, min(triples_per_query, len(pool))):
            triples.append((text, passages[pi].text, passages[j].text))

    return SyntheticDataset(
        collection=collection,
        train_queries=train_queries,
        train_qrels=train_qrels,
        dev_queries=dev_queries,
        dev_qrels=dev_qrels,
        triples=triples,
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
    """``python -m ftstudy.synthetic [--out DIR] [--measure] [sizes]``: write and/or measure a data set."""
    import argparse
    import json
    import time

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--n-topics", type=int, default=60)
    ap.add_argument("--passages-per-topic", type=int, default=16)
    ap.add_argument("--n-train-queries", type=int, default=300)
    ap.add_argument("--n-dev-queries", type=int, default=200)
    ap.add_argument("--triples-per-query", type=int, default=4)
    ap.add_argument("--out", help="folder to write the six TSV files into")
    ap.add_argument("--measure", action="store_true", help="difficulty for the real base model (offline copy)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    ds = generate(
        args.seed,
        args.n_topics,
        args.passages_per_topic,
        args.n_train_queries,
        args.n_dev_queries,
        args.triples_per_query,
    )
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
