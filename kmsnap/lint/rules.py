"""The lint rules: stable ids, default severities, what each checks, and an example of each.

Ids never change once published (suppressions and CI configurations name them); a rule that
is retired keeps its id reserved. ``docs/lint-rules.md`` documents the same table and
``tests/test_lint.py`` checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kmsnap.model import PRODUCT_KINDS

# Lint severities, highest first; ``--fail-on`` takes one of them (or ``never``).
LEVELS: tuple[str, ...] = ("error", "warning", "info")
FAIL_ON_LEVELS: tuple[str, ...] = (*LEVELS, "never")

# The kinds lint looks at: the named entities inside a product (reports, events, ...).
LINTED_KINDS: tuple[str, ...] = PRODUCT_KINDS


def level_at_least(level: str, threshold: str) -> bool:
    """Whether ``level`` is ``threshold`` or higher; nothing is at or above ``never``."""
    if threshold == "never":
        return False
    return LEVELS.index(level) <= LEVELS.index(threshold)


@dataclass(frozen=True)
class Rule:
    """One rule: its id, default severity, whether it runs unless configured, and its docs."""

    id: str
    severity: str
    summary: str
    bad: str  # a name or record that breaks the rule
    good: str  # the same made right
    enabled: bool = True  # off-by-default rules run only when enabled or by a preset
    options: tuple[str, ...] = ()  # rule-specific keys allowed under lint.rules.<id>
    presets: tuple[str, ...] = field(default=())  # presets that turn the rule on


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("name-collision", "warning",
             "Names of one kind that differ only by case, spaces or separators (within a "
             "product; across products with across_products: true).",
             'events "Signed Up" and "signed_up" in one product', 'one event "Signed Up"',
             options=("across_products",)),
        Rule("name-whitespace", "warning",
             "A name with leading or trailing spaces, or two spaces in a row.",
             '"Signed  Up "', '"Signed Up"'),
        Rule("name-control", "error",
             "A name holding a control, format or line-breaking character.",
             '"Signed\\nUp"', '"Signed Up"'),
        Rule("name-empty", "error",
             "An entity without a name, or whose name is empty or only spaces.",
             'name: ""', 'name: "Signed Up"'),
        Rule("naming-convention", "warning",
             "A name that does not follow the naming convention set for its kind in "
             "lint.naming (snake_case, title_case, object_action, or a regex).",
             'event "signed up" with naming: {event: title_case}', 'event "Signed Up"'),
        Rule("missing-description", "info",
             "An event, property or metric without a description.",
             "description: null", 'description: "A new account was created"'),
        Rule("missing-display-name", "info",
             "An event or property without a display name.",
             "display_name: null", 'display_name: "Signed up"'),
        Rule("property-type-missing", "warning",
             "A property without a type.",
             "type: null", "type: text"),
        Rule("metric-unit-missing", "warning",
             "A metric without a unit type.",
             "unit_type: null", "unit_type: percent"),
        Rule("ga4-reserved-name", "error",
             "An event or property name Google Analytics 4 reserves: a reserved event name "
             "(session_start, first_visit, ...) or prefix (_, firebase_, ga_, google_, gtag.).",
             'event "session_start"', 'event "session_started"',
             enabled=False, presets=("ga4",)),
        Rule("ga4-name-format", "warning",
             "An event or property name GA4 cannot take: longer than max_length (40) "
             "characters, or not a letter followed by letters, digits and underscores.",
             'event "Signed Up"', 'event "signed_up"',
             enabled=False, options=("max_length",), presets=("ga4",)),
    )
}

# Findings about the configuration itself, not about an entity: always on, never suppressed.
META_RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("suppression-expired", "warning",
             "A suppression in lint.suppress whose expires date has passed: it no longer "
             "applies, so the finding it hid is reported again.",
             "expires: 2025-01-31", "a later date, or fix the finding and drop the entry"),
        Rule("suppression-unused", "warning",
             "A suppression in lint.suppress that matches no finding (the entity was fixed or "
             "removed, or the id or rule is wrong).",
             "rule: name-empty, id: an-id-with-no-finding", "drop the entry"),
    )
}

PRESETS: dict[str, tuple[str, ...]] = {
    "ga4": tuple(r.id for r in RULES.values() if "ga4" in r.presets),
}

# Naming convention presets (lint.naming.<kind>: <preset> or {preset: ..., ...}).
CONVENTIONS: tuple[str, ...] = ("snake_case", "title_case", "object_action")

# GA4: reserved event names and prefixes, and its length limit for event and parameter names.
GA4_RESERVED_NAMES: frozenset[str] = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
    "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_remove",
    "app_store_refund", "app_store_subscription_cancel", "app_store_subscription_convert",
    "app_store_subscription_renew", "app_update", "app_upgrade", "dynamic_link_app_open",
    "dynamic_link_app_update", "dynamic_link_first_open", "error", "firebase_campaign",
    "firebase_in_app_message_action", "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression", "first_open", "first_visit", "in_app_purchase",
    "notification_dismiss", "notification_foreground", "notification_open",
    "notification_receive", "notification_send", "os_update", "screen_view", "session_start",
    "session_start_with_rollout", "user_engagement",
})
GA4_RESERVED_PREFIXES: tuple[str, ...] = ("_", "firebase_", "ga_", "google_", "gtag.")
GA4_MAX_LENGTH = 40
GA4_KINDS: tuple[str, ...] = ("event", "property")
