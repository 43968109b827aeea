"""The offline model registry (SYNAPSE_MODELS_FILE): JSON and YAML, unknown ids, bad files."""

from __future__ import annotations

import json

import pytest

from synapse_runtime.backend.exceptions import BackendNotFoundError, ModelRegistryError
from synapse_runtime.backend.registry import ModelRegistry
from synapse_runtime.errors import BackendError, ValidationError

YAML = """\
123:
  name: resnet50-demo
  category: neural_net
  file: s3://models/resnet50.zip
mnist:
  file: ./artifacts/mnist.zip
"""


def test_yaml_mapping(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(YAML)
    registry = ModelRegistry.from_env({"SYNAPSE_MODELS_FILE": str(path)})
    assert registry is not None
    model = registry.get_model(123)
    assert model == {"id": 123, "name": "resnet50-demo", "category": "neural_net", "file": "s3://models/resnet50.zip"}
    assert registry.get_model("123") == model
    mnist = registry.get_model("mnist")
    assert mnist["file"] == str(tmp_path / "artifacts" / "mnist.zip")  # relative to the registry file
    assert mnist["id"] == "mnist" and mnist["name"] == "mnist" and mnist["category"] is None


def test_json_list_form_and_file_uri_untouched(tmp_path):
    path = tmp_path / "models.json"
    path.write_text(json.dumps([{"id": 5, "name": "m5", "file": "https://x.example/m.zip?sig=1", "extra": [1]}]))
    model = ModelRegistry(path).get_model(5)
    assert model["file"] == "https://x.example/m.zip?sig=1" and model["extra"] == [1] and model["id"] == 5


def test_json_content_without_extension(tmp_path):
    path = tmp_path / "models"
    path.write_text('{"9": {"file": "/abs/model.zip"}}')
    assert ModelRegistry(path).get_model(9)["file"] == "/abs/model.zip"


def test_returned_dicts_are_copies(tmp_path):
    path = tmp_path / "models.json"
    path.write_text('{"1": {"file": "s3://b/k", "tags": ["a"]}}')
    registry = ModelRegistry(path)
    registry.get_model(1)["tags"].append("mutated")
    assert registry.get_model(1)["tags"] == ["a"]


def test_unknown_id_lists_known_ids(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(YAML)
    with pytest.raises(BackendNotFoundError) as info:
        ModelRegistry(path).get_model(999)
    text = str(info.value)
    assert "model 999 not found" in text and str(path) in text and "known ids: 123, mnist" in text
    assert isinstance(info.value, BackendError)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("models.json", '{"1": {"file": ', "invalid JSON"),
        ("models.yaml", "1: [unclosed", "invalid YAML"),
        ("models.yaml", "", "is empty"),
        ("models.yaml", "- just\n- strings\n", "entry 0"),
        ("models.json", '"a string"', "must be a mapping"),
        ("models.json", '{"1": {"name": "no file"}}', "'file'"),
        ("models.json", '{"1": "s3://b/k"}', "expected a mapping"),
        ("models.yaml", "1: {file: a}\n'1': {file: b}\n", "listed twice"),
    ],
)
def test_malformed_files_name_the_path(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ModelRegistryError) as info:
        ModelRegistry(path).get_model(1)
    assert problem in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, ValidationError)


def test_missing_file_is_reported_on_first_use_not_at_construction(tmp_path):
    registry = ModelRegistry.from_env({"SYNAPSE_MODELS_FILE": str(tmp_path / "nope.yaml")})
    assert registry is not None
    with pytest.raises(ModelRegistryError, match="no such file"):
        registry.get_model(1)


def test_from_env_unset():
    assert ModelRegistry.from_env({}) is None
    assert ModelRegistry.from_env({"SYNAPSE_MODELS_FILE": " "}) is None
