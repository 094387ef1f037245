"""Kubernetes names and quantities, and the helpers every part of the model checks its fields with.

Each rule is one predicate here (a DNS-1035 label, an object name, a label key or value, a resource
name, a quantity, ...); a field is checked with :func:`check` (``"<field> must be ..., got <value>"``)
or :func:`require` (any other message), which raise :class:`SparkApplicationSpecError`. A rule two
fields share, with the same words, is a :class:`Rule`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: The longest Kubernetes object name that is also a DNS-1035 label (``metadata.name``).
MAX_NAME_LENGTH = 63
#: Room left in a name for "-YYYYMMDD-" and an 8-character hash.
MAX_JOB_NAME_LENGTH = MAX_NAME_LENGTH - 18
#: The longest DNS-1123 subdomain: names of PriorityClasses, Volcano queues, claims and Secrets.
MAX_OBJECT_NAME_LENGTH = 253

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MEMORY = re.compile(r"^[1-9][0-9]*[kmgt]$")
#: A Kubernetes CPU quantity: whole or decimal cores, or millicores ("500m").
_CPU_QUANTITY = re.compile(r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
#: A DNS-1123 subdomain: names of PriorityClasses and Volcano queues (at most 253 characters).
_DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: A label key: an optional DNS-1123 subdomain prefix and "/", then a name of at most 63 characters.
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
#: A label value (may be empty): at most 63 characters, alphanumeric at both ends.
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
#: A non-negative Kubernetes quantity, as the CRD's pattern for batchSchedulerOptions.resources.
_QUANTITY = re.compile(r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                       r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
#: A jar given by URI: a scheme, then a path ending in ".jar".
_JAR_URI = re.compile(r"^[a-z][a-z0-9+.-]*://\S+\.jar$")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class SparkApplicationSpecError(ValueError):
    """A SparkApplication cannot be rendered from the given description."""


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None


def is_dns_1035_label(value: object, max_length: int = MAX_NAME_LENGTH) -> bool:
    """Lowercase letters, digits and '-', starting with a letter, of at most ``max_length`` characters."""
    return _matches(_DNS_1035, value) and len(str(value)) <= max_length


def is_object_name(value: object) -> bool:
    """A DNS-1123 subdomain (lowercase letters, digits, '-' and '.') of at most 253 characters."""
    return _matches(_DNS_1123_SUBDOMAIN, value) and len(str(value)) <= MAX_OBJECT_NAME_LENGTH


def is_label_key(value: object) -> bool:
    """A label (or taint) key such as ``nvidia.com/gpu.present``."""
    return _matches(_LABEL_KEY, value)


def is_label_value(value: object) -> bool:
    """A label value: empty, or at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends."""
    return _matches(_LABEL_VALUE, value)


def is_resource_name(value: object) -> bool:
    """A resource name such as ``cpu`` or the extended resource ``nvidia.com/gpu``."""
    return _matches(_RESOURCE_NAME, value)


def is_quantity(value: object) -> bool:
    """A non-negative Kubernetes quantity string such as ``2``, ``500m`` or ``16Gi``."""
    return _matches(_QUANTITY, value)


def is_cpu_quantity(value: object) -> bool:
    """A CPU quantity: whole or decimal cores (``1.5``) or millicores (``500m``)."""
    return _matches(_CPU_QUANTITY, value)


def is_size(value: object) -> bool:
    """A positive size in Spark's notation, with a unit k, m, g or t (``2g``)."""
    return _matches(_MEMORY, value)


def is_jar_uri(value: object) -> bool:
    """The URI of a jar: a scheme, then a path ending in ``.jar``."""
    return _matches(_JAR_URI, value)


def is_image_reference(value: object) -> bool:
    """A non-empty image reference without whitespace."""
    return isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)


def is_count(value: object, minimum: int) -> bool:
    """An integer (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def require(condition: bool, message: str) -> None:
    """Raise :class:`SparkApplicationSpecError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SparkApplicationSpecError(message)


def check(field: str, value: object, condition: bool, requirement: str) -> None:
    """Raise ``"<field> <requirement>, got <value!r>"`` unless ``condition`` holds.

    :param field: where the value is, e.g. ``executor.placement.tolerations[0].key``.
    :param value: the value checked, quoted in the message.
    :param condition: whether it passed.
    :param requirement: what it must be, e.g. ``must be a label key such as 'nvidia.com/gpu'``.
    """
    require(condition, f"{field} {requirement}, got {value!r}")


@dataclass(frozen=True)
class Rule:
    """A rule that several fields follow, with the words their errors say it in.

    :param test: the predicate, e.g. :func:`is_object_name`.
    :param requirement: what a value must be, e.g. ``must be a PriorityClass name (...)``.
    """

    test: Callable[[Any], bool]
    requirement: str

    def check(self, field: str, value: object, *, optional: bool = False) -> None:
        """Raise unless ``value`` follows the rule (or is None, when ``optional``)."""
        if optional and value is None:
            return
        check(field, value, self.test(value), self.requirement)


#: Sizes of the JVM heap and of the pods' non-heap memory.
SIZE = Rule(is_size, "must be a positive size with a unit k, m, g or t (e.g. '2g')")
#: CPU requests and limits of the pods.
CPU_QUANTITY = Rule(is_cpu_quantity, "must be a CPU quantity such as '500m' or '1.5'")
#: The PriorityClass of a pod, or of a Volcano PodGroup.
PRIORITY_CLASS_NAME = Rule(is_object_name,
                           "must be a PriorityClass name (lowercase letters, digits, '-' and '.')")


def label_value(value: str) -> str:
    """Return ``value`` in a form Kubernetes accepts as a label value (<= 63 chars, alphanumeric ends)."""
    return _LABEL_UNSAFE.sub("_", value).strip("._-")[:63].rstrip("._-")
