"""A card names the base model by its hub id when one can be known, and never by a path of this machine."""

import json

import yaml

from embedtrain.card.public import base_model_id, without_local_paths
from embedtrain.data.mirror import ENV_VAR


def test_a_hub_id_is_its_own_name():
    assert base_model_id("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_a_local_copy_the_mirror_maps_is_named_by_its_hub_id(tmp_path, monkeypatch):
    (tmp_path / "copy").mkdir()
    mirror = tmp_path / "mirror.yaml"
    mirror.write_text(yaml.safe_dump({"models": {"org/model": str(tmp_path / "copy")}}), encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(mirror))
    assert base_model_id(str(tmp_path / "copy")) == "org/model"


def test_a_snapshot_in_the_hub_cache_is_named_by_its_repository(tmp_path):
    snapshot = tmp_path / "hub" / "models--BAAI--bge-small-en-v1.5" / "snapshots" / "5c38ec7c"
    snapshot.mkdir(parents=True)
    assert base_model_id(str(snapshot)) == "BAAI/bge-small-en-v1.5"


def test_a_plain_checkpoint_is_named_by_the_hub_id_its_config_names(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "google-bert/bert-base-uncased"}))
    assert base_model_id(str(tmp_path)) == "google-bert/bert-base-uncased"
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "/home/someone/bert"}))
    assert base_model_id(str(tmp_path)) is None


def test_a_sentence_transformers_folder_is_not_named_by_the_model_it_was_trained_from(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    (tmp_path / "modules.json").write_text("[]")
    assert base_model_id(str(tmp_path)) is None


def test_absolute_paths_are_replaced_by_public_names_at_any_depth(tmp_path):
    shown = without_local_paths({"model": {"base": str(tmp_path / "models" / "tiny")},
                                 "evaluators": [{"source": str(tmp_path / "dev.csv"), "name": "dev"}], "n": 3})
    assert shown == {"model": {"base": "tiny"}, "evaluators": [{"source": "dev.csv", "name": "dev"}], "n": 3}
