"""An OpenFeature provider answering from the `feature_flag` table through `FeatureFlags`.

Code that prefers the vendor-neutral OpenFeature API gets exactly the decisions of
`FeatureFlags.is_enabled` (same cache, bucketing, environment and code fallbacks), so a flag can
never mean one thing to `omnizap flags check` and another to OpenFeature code:

    api.set_provider(OmniZapFlagProvider(runtime.flags))
    client = api.get_client()
    client.get_boolean_value("enable_object_storage_delivery", False,
                             EvaluationContext(targeting_key=asset_owner))

- The evaluation context's targeting key is the rollout subject; without one the decision is the
  deployment-wide one (the flag name as subject), as in `FeatureFlags`.
- Reasons: a partial rollout is TARGETING_MATCH (the answer depends on the subject's bucket), a row
  switched off or at 0% is DISABLED, a row at 100% or a FEATURE_<NAME> variable is STATIC, a known
  flag answering with its code fallback is DEFAULT. Variants are "on" and "off".
- A flag that is unknown (no row, no FEATURE_ variable, not in FLAG_DEFAULTS) is FLAG_NOT_FOUND, so
  the caller's default value applies rather than a silent "off".
- The table holds on/off flags only: string, integer, float and object evaluations of an existing
  flag are TYPE_MISMATCH (the caller's default applies), of an unknown flag FLAG_NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagMetadata, FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from omnizap.platform.flags.defaults import FLAG_DEFAULTS
from omnizap.platform.flags.evaluation import FeatureFlags, FlagDecision, FlagError, normalize_flag_name

PROVIDER_NAME = "omnizap-feature-flags"
T = TypeVar("T")


class OmniZapFlagProvider(AbstractProvider):
    """Boolean flags from `FeatureFlags`; thread-safe because `FeatureFlags` is."""

    def __init__(self, flags: FeatureFlags) -> None:
        super().__init__()
        self.flags = flags

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    # --- boolean: the only kind the table holds ---------------------------------------------------
    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        found = self._decide(flag_key, evaluation_context)
        if isinstance(found, FlagResolutionDetails):
            return FlagResolutionDetails(
                value=default_value,
                reason=found.reason,
                error_code=found.error_code,
                error_message=found.error_message,
            )
        decision = found
        return FlagResolutionDetails(
            value=decision.enabled,
            reason=_reason(decision),
            variant="on" if decision.enabled else "off",
            flag_metadata=_metadata(decision),
        )

    # --- other types: a type mismatch for flags that exist -----------------------------------------
    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._not_boolean(flag_key, default_value, "string", evaluation_context)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._not_boolean(flag_key, default_value, "integer", evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._not_boolean(flag_key, default_value, "float", evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._not_boolean(flag_key, default_value, "object", evaluation_context)

    # --- helpers ----------------------------------------------------------------------------------
    def _decide(
        self, flag_key: str, evaluation_context: EvaluationContext | None
    ) -> FlagDecision | FlagResolutionDetails[None]:
        """The decision for the context's subject, or the error that replaces it."""
        try:
            name = normalize_flag_name(flag_key)
        except FlagError as exc:
            return _error(ErrorCode.FLAG_NOT_FOUND, str(exc))
        subject = ""
        if evaluation_context is not None and evaluation_context.targeting_key:
            subject = str(evaluation_context.targeting_key)
        decision = self.flags.decide(name, subject)
        if decision.source == "fallback" and name not in FLAG_DEFAULTS:
            return _error(
                ErrorCode.FLAG_NOT_FOUND,
                f"flag {name!r} has no row in feature_flag, no FEATURE_ variable and no code fallback",
            )
        return decision

    def _not_boolean(
        self, flag_key: str, default_value: T, kind: str, evaluation_context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        found = self._decide(flag_key, evaluation_context)
        if isinstance(found, FlagResolutionDetails):
            code, message = found.error_code, found.error_message
        else:
            code = ErrorCode.TYPE_MISMATCH
            message = f"flag {found.name!r} is a boolean flag; asked for a {kind} value"
        return FlagResolutionDetails(
            value=default_value, reason=Reason.ERROR, error_code=code, error_message=message
        )


def _error(code: ErrorCode, message: str) -> FlagResolutionDetails[None]:
    return FlagResolutionDetails(value=None, reason=Reason.ERROR, error_code=code, error_message=message)


def _reason(decision: FlagDecision) -> Reason:
    if decision.source == "environment":
        return Reason.STATIC
    if decision.source == "fallback":
        return Reason.DEFAULT
    percent = decision.rollout_percent or 0
    if not decision.row_enabled or percent <= 0:
        return Reason.DISABLED
    if percent >= 100:
        return Reason.STATIC
    return Reason.TARGETING_MATCH


def _metadata(decision: FlagDecision) -> FlagMetadata:
    metadata: dict[str, bool | int | float | str] = {"source": decision.source, "bucket": decision.bucket}
    if decision.rollout_percent is not None:
        metadata["rollout_percent"] = decision.rollout_percent
    return metadata
