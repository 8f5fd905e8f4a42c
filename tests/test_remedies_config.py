"""The remedies' config: reserved ids, the gate that keeps config/msmarco.yaml to the paper's models, and the ids
and families that the remedies add (issue 14)."""

from __future__ import annotations

import pytest

from ftstudy.config import (
    ConfigError,
    deep_merge,
    hybrid_models,
    load_config,
    mined_set_names,
    model_ids,
    paper_model_ids,
    remedy_catalog,
    timed_model_ids,
    training_slice,
    wise_models,
)

PAPER_IDS = ["base", "full_random", "full_hard", "lora_random", "lora_hard", "bm25"]

REMEDY = {
    "variants": {
        "full_hard_l2sp": {"method": "full", "negatives": "hard", "modifies": "full_hard", "training": {"l2sp": 0.1}},
        "lora_perc": {"method": "lora", "negatives": "hard_perc", "modifies": "lora_hard"},
    },
    "mining": {"filtered_sets": {"hard_perc": {"margin": 0.05, "rank_range": [1, 50]}}},
    "wise_ft": {"weights": [0.5, 0.05]},
    "fusion": {"methods": ["rrf", "wsum"], "models": ["base", "full_hard"]},
}


def test_msmarco_alone_runs_exactly_the_papers_models(repo):
    c = load_config(repo / "config" / "msmarco.yaml")
    assert model_ids(c) == PAPER_IDS
    assert paper_model_ids(c) == PAPER_IDS
    assert remedy_catalog(c) == {} and wise_models(c) == [] and hybrid_models(c) == []
    assert mined_set_names(c) == ["hard"] and c["mining"]["diagnose_eval_sets"] == []


def test_msmarco_drops_remedies_even_when_a_layer_defines_them(repo):
    c = load_config(repo / "config" / "msmarco.yaml", overrides=REMEDY)
    assert model_ids(c) == PAPER_IDS
    on = load_config(repo / "config" / "msmarco.yaml", overrides={**REMEDY, "remedies": True})
    assert len(model_ids(on)) > len(PAPER_IDS)


def test_remedies_yaml_over_msmarco_adds_remedies_with_three_seeds(repo):
    c = load_config(repo / "config" / "msmarco.yaml", repo / "config" / "remedies.yaml")
    assert c["training"]["seeds"] == [1, 2, 3]
    cat = remedy_catalog(c)
    kinds = {v["kind"] for v in cat.values()}
    assert kinds == {"variant", "wise", "hybrid"}
    assert len(mined_set_names(c)) >= 2
    # the paper's models are all there, each seed's too
    assert set(PAPER_IDS) <= set(model_ids(c)) and "full_hard_seed3" in model_ids(c)
    for m, entry in cat.items():
        assert entry["reference"] in model_ids(c), m


def test_ids_and_families_of_the_remedies():
    c = load_config(overrides={**REMEDY, "remedies": True})
    wise = {m["model_id"]: m for m in wise_models(c)}
    assert {"full_random_wise50", "lora_hard_wise05", "lora_hard_wise50"} <= set(wise)
    assert "full_hard_l2sp_wise50" not in wise  # wise_ft.variants null = the paper variants only
    assert wise["lora_hard_wise05"]["weight"] == 0.05 and wise["lora_hard_wise05"]["source"] == "lora_hard"
    hybrid = [m["model_id"] for m in hybrid_models(c)]
    assert hybrid == ["hybrid_rrf_base", "hybrid_rrf_full_hard", "hybrid_wsum_base", "hybrid_wsum_full_hard"]
    cat = remedy_catalog(c)
    assert cat["full_hard_l2sp"] == {"kind": "variant", "group": "full_hard_l2sp", "seed": 42, "reference": "full_hard"}
    assert cat["hybrid_rrf_base"]["reference"] == "base"
    assert timed_model_ids(c) == PAPER_IDS  # a remedy variant has its reference's architecture: not timed again
    assert "hybrid_rrf_base" not in timed_model_ids(c)
    assert "full_hard_l2sp" not in paper_model_ids(c)


def test_remedies_with_seeds_pair_each_seed_with_the_same_seed_of_its_reference():
    c = load_config(overrides={**REMEDY, "remedies": True, "training": {"seeds": [1, 2]}})
    cat = remedy_catalog(c)
    assert cat["full_hard_l2sp_seed2"] == {
        "kind": "variant",
        "group": "full_hard_l2sp",
        "seed": 2,
        "reference": "full_hard_seed2",
    }
    assert cat["full_hard_seed2_wise50"]["group"] == "full_hard_wise50"
    assert cat["hybrid_rrf_full_hard_seed2"] == {
        "kind": "hybrid",
        "group": "hybrid_rrf_full_hard",
        "seed": 2,
        "reference": "full_hard_seed2",
    }


def test_a_filtered_set_inherits_from_mining_and_feeds_only_its_variants():
    c = load_config(overrides={**REMEDY, "remedies": True})
    data = training_slice(c, "lora_perc")["data"]
    assert data["filtered"]["rank_range"] == [1, 50] and data["filtered"]["margin_mode"] == "relative"
    assert data["filtered"]["seed"] == c["mining"]["seed"]
    # a filtered set's settings do not change what the paper's hard-negative variants train on
    changed = {"remedies": True, "mining": {"filtered_sets": {"hard_perc": {"margin": 0.1}}}}
    other = load_config(overrides=deep_merge(REMEDY, changed))
    assert training_slice(other, "full_hard") == training_slice(c, "full_hard")
    assert training_slice(other, "lora_perc") != training_slice(c, "lora_perc")


@pytest.mark.parametrize(
    "override, key",
    [
        ({"variants": {"x_wise50": {"method": "full", "negatives": "random"}}}, "variants.x_wise50"),
        ({"variants": {"hybrid_x": {"method": "full", "negatives": "random"}}}, "variants.hybrid_x"),
        ({"variants": {"x": {"method": "full", "negatives": "nope"}}}, "variants.x.negatives"),
        ({"variants": {"x": {"method": "full", "negatives": "hard", "modifies": "nope"}}}, "variants.x.modifies"),
        ({"variants": {"x": {"method": "full", "negatives": "hard", "modifies": "full_hard_l2sp"}}}, "modifies"),
        ({"wise_ft": {"weights": [0.555]}}, "wise_ft.weights"),
        ({"wise_ft": {"weights": [1.0]}}, "wise_ft"),
        ({"wise_ft": {"variants": ["nope"]}}, "wise_ft.variants"),
        ({"fusion": {"methods": ["borda"]}}, "fusion"),
        ({"fusion": {"models": ["nope"]}}, "fusion.models"),
        ({"fusion": {"methods": ["rrf"]}, "bm25": {"enabled": False}}, "fusion.methods"),
        ({"mining": {"filtered_sets": {"hard": {"margin": 0.1}}}}, "filtered_sets"),
        ({"mining": {"filtered_sets": {"f": {"rank_range": [5, 900]}}}}, "mining.filtered_sets.f.rank_range"),
        ({"mining": {"filtered_sets": {"f": {"margin": 1.5}}}}, "mining.filtered_sets.f.margin"),
        ({"mining": {"diagnose_eval_sets": ["nope"]}}, "mining.diagnose_eval_sets"),
    ],
)
def test_bad_remedy_config_is_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=deep_merge(REMEDY, {**override, "remedies": True}))
    assert key in str(err.value)


def test_an_overlay_switches_a_variant_off_and_nothing_may_refer_to_it():
    c = load_config(overrides={"variants": {"full_hard_mnrl": {"enabled": False}}})
    assert "full_hard_mnrl" not in c["variants"] and "full_hard_mnrl" not in model_ids(c)
    assert "lora_perc" in model_ids(c)
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"variants": {"lora_hard": {"enabled": False}}})  # lora_perc modifies lora_hard
    assert "variants.lora_perc.modifies" in str(err.value)
