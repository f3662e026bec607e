"""Two requests in one message, end to end: the NLU graph splits and classifies the clauses, the first flow
runs with its own order number, the second request is offered after it and, after a yes, runs with its own
order number, its own email check and its own yes.

Each conversation runs against two trained assistants talking to the project's action server (a seeded
database): the project's small-epoch test model (`agent`, as in test_bot.py) and a small model trained here in
a few minutes on the project's domain, rules and NLU data with a light pipeline (sparse features and logistic
regression instead of MiniLM, DIET and the fusion classifier; RulePolicy and MultiRequestPolicy only), which
exercises the same ClauseSplitter / MultiRequestCollector graph mechanics and the same dialogue.

Order 10028 (packed, cancellable) is the one cancelled here; other integration tests cancel 10021, 10022 and
10027 on the same database.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assistant.paths import PROJECT_ROOT, nlu_training_files
from tests.integration.conftest import Conversation

SMALL_CONFIG = """
recipe: default.v1
language: en
assistant_id: multi-request-small
pipeline:
  - name: components.text_sanitizer.TextSanitizer
  - name: components.clause_splitter.ClauseSplitter
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
    case_sensitive: false
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 2
    max_ngram: 4
  - name: LogisticRegressionClassifier
    random_state: 42
  - name: RegexEntityExtractor
    use_regexes: true
    use_lookup_tables: false
  - name: FallbackClassifier
    threshold: 0.3
    ambiguity_threshold: 0.05
  - name: components.multi_request.MultiRequestCollector
    min_confidence: 0.3
policies:
  - name: RulePolicy
    core_fallback_threshold: 0.3
    core_fallback_action_name: action_default_fallback
  - name: components.multi_request_policy.MultiRequestPolicy
"""


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """The small model (about 1 minute of CPU), trained once for this module."""
    from rasa.model_training import train

    out = tmp_path_factory.mktemp("multi-request-model")
    config = out / "config.yml"
    config.write_text(SMALL_CONFIG, encoding="utf-8")
    stories = [str(PROJECT_ROOT / "data" / name) for name in ("rules.yml", "stories.yml")]
    files = [str(p) for p in nlu_training_files()] + stories
    result = train(domain=str(PROJECT_ROOT / "domain.yml"), config=str(config), training_files=files,
                   output=str(out), fixed_model_name="small")
    assert result.code == 0 and result.model, "training the small model failed"
    return Path(result.model)


@pytest.fixture(scope="module")
def small_agent(small_model, action_endpoint):
    from rasa.core.agent import Agent

    return Agent.load(str(small_model), action_endpoint=action_endpoint)


@pytest.fixture(params=["small", "test-model"])
def bot(request):
    """Each test runs with the small model and with the project's test model."""
    return request.getfixturevalue("small_agent" if request.param == "small" else "agent")


def texts(messages) -> str:
    return " ".join(m.get("text") or "" for m in messages).lower()


def test_the_example_messages_are_split_into_their_requests(small_agent) -> None:
    def parse(text):
        return asyncio.run(small_agent.parse_message(text))

    first = parse("where is order 10023 and can you also cancel 10027")
    assert first["intent"]["name"] == "track_order"
    assert [e["value"] for e in first["entities"] if e["entity"] == "order_number"] == ["10023"]
    assert [(r["intent"], r["order_numbers"]) for r in first["requests"]] == [
        ("track_order", ["10023"]), ("cancel_order", ["10027"]),
    ]
    three = parse("cancel order 45172 and 45173 and 45174")
    assert [(r["intent"], r["order_numbers"]) for r in three["requests"]] == [
        ("cancel_order", ["45172", "45173", "45174"])
    ]
    assert [e["value"] for e in three["entities"] if e["entity"] == "order_number"] == ["45172"]
    singles = ("bread and butter", "do you have salt and vinegar crisps", "cancel and refund order 10023")
    for single in singles:
        assert "requests" not in parse(single), single


def _packed_again(bot_database_url: str, number: str) -> None:
    """Put an order back to `packed`: both model variants of a test cancel it on the one shared database."""
    from sqlalchemy import update

    from shop.db import make_engine, make_session_factory, unit_of_work
    from shop.models import Order
    from shop.statuses import OrderStatus

    with unit_of_work(make_session_factory(make_engine(bot_database_url))) as session:
        session.execute(update(Order).where(Order.order_number == number).values(status=OrderStatus.PACKED))


def test_track_then_cancel_in_one_message(bot, repository, bot_database_url, request) -> None:
    _packed_again(bot_database_url, "10028")
    talk = Conversation(bot, f"multi-{request.node.name}")
    asked = texts(talk.say("where is order 10023 and can you also cancel 10028"))
    assert "10023" in asked and "email" in asked and "10028" not in asked

    replies = talk.say(repository.get_order("10023").customer_email)
    said = texts(replies)
    assert "order 10023 is on its way" in said
    assert "you also asked to cancel order 10028" in said
    assert [b["payload"] for b in replies[-1].get("buttons") or []] == ["/affirm", "/deny"]

    # a yes starts the cancel flow for 10028: its own email check first, nothing cancelled yet
    asked = texts(talk.say("yes"))
    assert "order 10028" in asked and "email" in asked
    assert repository.get_order("10028").status == "packed"
    confirm = texts(talk.say(repository.get_order("10028").customer_email))
    assert "10028" in confirm and "cancel" in confirm
    assert repository.get_order("10028").status == "packed"
    done = texts(talk.say("yes"))
    assert "order 10028 is cancelled" in done
    assert repository.get_order("10028").status == "cancelled"
    # nothing more is offered
    assert "you also asked" not in done


def test_a_no_to_the_offer_leaves_the_second_order(bot, repository, request) -> None:
    talk = Conversation(bot, f"multi-no-{request.node.name}")
    talk.say("where is order 10023 and cancel order 10031")
    said = texts(talk.say(repository.get_order("10023").customer_email))
    assert "you also asked to cancel order 10031" in said
    before = repository.get_order("10031").status
    assert "leave order 10031 as it is" in texts(talk.say("no"))
    assert repository.get_order("10031").status == before
