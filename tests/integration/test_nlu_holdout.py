"""A model trained on 80 % of the project's own NLU data classifies the held-out 20 % well.

The split is stratified by intent with a fixed seed; the model uses the project's config.yml with epochs capped
(the same cap as the test model), so this measures the pipeline, not a special test configuration. Only the
entity-only DIETClassifier is left out: it does not take part in intent classification.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).with_name("rasa"))

MIN_ACCURACY = 0.85
MIN_MACRO_F1 = 0.85


def _without_entity_only_diet(config: Path) -> None:
    """Drop the DIETClassifier that only extracts entities (`intent_classification: false`) from `config`.

    It never sets the intent (the fusion classifier does) and is the slowest part of training; entities are
    checked by the trained bot's tests.
    """
    import yaml

    data = yaml.safe_load(config.read_text())
    pipeline = data["pipeline"]
    data["pipeline"] = [
        item for item in pipeline
        if not (item.get("name") == "DIETClassifier" and item.get("intent_classification") is False)
    ]
    assert len(data["pipeline"]) == len(pipeline) - 1, "config.yml should have one entity-only DIETClassifier"
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.integration
@pytest.mark.slow
def test_held_out_nlu_examples_are_classified_well(tmp_path):
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data
    from sklearn.metrics import accuracy_score, f1_score

    sys.path.insert(0, str(ROOT / "scripts"))
    from assistant.training import capped_config

    from assistant.paths import nlu_training_files

    files = [path for path in nlu_training_files() if path.name != "sentiment.yml"]
    data = load_data(str(files[0]))
    for extra in files[1:]:
        data = data.merge(load_data(str(extra)))
    train, test = data.train_test_split(train_frac=0.8, random_seed=42)
    train_file = tmp_path / "nlu_train.yml"
    train_file.write_text(train.nlu_as_yaml())
    config = capped_config(ROOT / "config.yml", int(os.environ.get("TEST_MAX_EPOCHS", "40")), tmp_path)
    _without_entity_only_diet(config)
    result = subprocess.run(
        [RASA, "train", "nlu", "--config", str(config), "--nlu", str(train_file), "--out", str(tmp_path),
         "--fixed-model-name", "holdout"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    agent = Agent.load(str(tmp_path / "holdout.tar.gz"))
    examples = [e for e in test.intent_examples if e.get("text")]
    y_true = [e.get("intent") for e in examples]

    async def parse_all():
        return [await agent.parse_message(e.get("text")) for e in examples]

    y_pred = [p["intent"]["name"] for p in asyncio.run(parse_all())]
    accuracy = accuracy_score(y_true, y_pred)
    macro_f1 = f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)
    errors = [(e.get("text"), t, p) for e, t, p in zip(examples, y_true, y_pred) if t != p]
    assert len(examples) >= 200
    assert accuracy >= MIN_ACCURACY and macro_f1 >= MIN_MACRO_F1, (
        f"accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f} on {len(examples)} held-out examples; errors: {errors[:30]}"
    )
