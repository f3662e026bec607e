"""`ConfigOnlyPolicy`: the base of the project's rule-like policies, which learn nothing from stories.

`SentimentHandoffPolicy` and `MultiRequestPolicy` decide from the tracker and their configuration alone. This
base does what both need around that: training checks that the actions they predict are in the domain and
stores the configuration (JSON in the policy's resource, never a pickle); loading reads it back. A subclass
sets :attr:`NAME`, :attr:`CONFIG_FILE` and :attr:`ACTIONS_KEY` and keeps its offer action in
``self._offer_action``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Text, Type

from rasa.core.constants import POLICY_FEATURIZER, POLICY_MAX_HISTORY
from rasa.core.policies.policy import Policy, SupportedData
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.domain import Domain
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.exceptions import InvalidConfigException

from assistant.configuration import ComponentConfig, validate_config

logger = logging.getLogger(__name__)

#: Keys that Rasa's `Policy` base class reads (its tracker featurizer); passed over by the check.
BASE_POLICY_KEYS = (POLICY_MAX_HISTORY, POLICY_FEATURIZER)


class ConfigOnlyPolicy(Policy):
    """A policy whose whole model is its configuration.

    Subclasses set:
        NAME: the name in log lines and errors.
        CONFIG_FILE: the JSON file name inside the policy's resource.
        ACTIONS_KEY: the config key listing further actions the policy refers to; those missing from the domain
            are logged (one line), not fatal.
        CONFIG_SCHEMA: the `assistant.configuration.ComponentConfig` that checks every key of the config.
    """

    NAME: ClassVar[Text] = "ConfigOnlyPolicy"
    CONFIG_FILE: ClassVar[Text] = "config_only_policy.json"
    ACTIONS_KEY: ClassVar[Text] = ""
    CONFIG_SCHEMA: ClassVar[Type[ComponentConfig]]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key (`CONFIG_SCHEMA`); unknown keys are refused, except those Rasa's `Policy` base reads
        (`max_history`, `featurizer`).

        Raises:
            InvalidConfigException: naming the key and its valid values.
        """
        validate_config(cls.NAME, cls.CONFIG_SCHEMA, config, ignore=BASE_POLICY_KEYS)

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        """Validates the config (see `validate_config`) and keeps its `offer_action`."""
        self.validate_config(config)
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self._offer_action: Text = config["offer_action"]

    @staticmethod
    def supported_data() -> SupportedData:
        """Rules and stories alike: the policy ignores them anyway."""
        return SupportedData.ML_AND_RULE_DATA

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Checks that the domain has the configured actions and stores the config; nothing is learned.

        Raises:
            InvalidConfigException: if `offer_action` is not an action of the domain.
        """
        if self._offer_action not in domain.action_names_or_texts:
            raise InvalidConfigException(
                f"{self.NAME}: `offer_action` '{self._offer_action}' is not an action of the domain; add it to "
                f"domain.yml or configure another action."
            )
        named = self.config.get(self.ACTIONS_KEY) or [] if self.ACTIONS_KEY else []
        missing = sorted(a for a in named if a not in domain.action_names_or_texts)
        if missing:
            logger.warning("%s: `%s` not in the domain: %s.", self.NAME, self.ACTIONS_KEY, ", ".join(missing))
        self.persist()
        return self._resource

    def persist(self) -> None:
        """Writes the config as JSON to the policy's resource."""
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / self.CONFIG_FILE).write_text(
                json.dumps(self.config, indent=2, sort_keys=True), encoding="utf-8"
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "ConfigOnlyPolicy":
        """Loads the stored config (the given `config` when nothing was stored)."""
        stored: Dict[Text, Any] = {}
        try:
            with model_storage.read_from(resource) as directory:
                stored = json.loads((Path(directory) / cls.CONFIG_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.debug("%s: no stored config in '%s'; using the given one.", cls.NAME, resource.name)
        return cls({**config, **stored}, model_storage, resource, execution_context)
