"""Kubernetes names and quantities, and the helpers every field is checked with."""

from __future__ import annotations

import pytest

from sparkapp.application.names import (
    PRIORITY_CLASS_NAME,
    SIZE,
    SparkApplicationSpecError,
    check,
    is_count,
    is_cpu_quantity,
    is_dns_1035_label,
    is_image_reference,
    is_jar_uri,
    is_label_key,
    is_label_value,
    is_object_name,
    is_quantity,
    is_resource_name,
    is_size,
    label_value,
    require,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("flight_delay_retraining", "flight_delay_retraining"),
        ("manual__2013-07-01T00:00:00+00:00", "manual__2013-07-01T00_00_00_00_00"),
        ("_x" + "a" * 70, "x" + "a" * 62),
    ],
)
def test_label_value_is_kubernetes_safe(value, expected):
    assert label_value(value) == expected


@pytest.mark.parametrize(("predicate", "accepted", "refused"), [
    (is_dns_1035_label, ["f", "features-1", "f" * 63],
     ["", "Features", "1f", "f-", "f_1", "f" * 64, None, 1]),
    (is_object_name, ["ml-training", "a.b-c", "a" * 253], ["", "ML", "-a", "a_b", "a" * 254, None]),
    (is_label_key, ["pool", "nvidia.com/gpu.present", "a/B_c"], ["", "a b", "nvidia.com/ gpu", "-a", 1]),
    (is_label_value, ["", "true", "a" * 63, "A-b_c.d"], ["-gpu", "a" * 64, "a b", True, None]),
    (is_resource_name, ["cpu", "nvidia.com/gpu"], ["", "GPU", "nvidia.com/", 2]),
    (is_quantity, ["2", "500m", "16Gi", "1.5", "1e3", ".5"], ["", "two", "2 Gi", "16GiB", "-2", 2]),
    (is_cpu_quantity, ["1", "1.5", "500m"], ["", "0m", "half", "1.", 1]),
    (is_size, ["512m", "2g", "1t"], ["", "0g", "2GB", "2", 2]),
    (is_jar_uri, ["local:///opt/a.jar", "https://repo.example/b.jar"], ["a.jar", "https://r/lib.zip", None]),
    (is_image_reference, ["i", "ghcr.io/org/spark:1.0"], ["", "a b:1", None]),
])
def test_each_rule_accepts_and_refuses_what_kubernetes_does(predicate, accepted, refused):
    assert [v for v in accepted if not predicate(v)] == []
    assert [v for v in refused if predicate(v)] == []


def test_a_count_is_an_integer_not_a_bool():
    assert (is_count(1, 1), is_count(0, 0), is_count(0, 1), is_count(True, 1), is_count(1.0, 1)) == (
        True, True, False, False, False)
    assert is_dns_1035_label("f" * 46, 45) is False


def test_check_and_require_say_the_field_what_it_must_be_and_what_it_got():
    check("executor.memory", "2g", True, "must be a size")
    require(True, "not raised")
    with pytest.raises(SparkApplicationSpecError) as raised:
        check("executor.memory", "2GB", False, "must be a size")
    assert str(raised.value) == "executor.memory must be a size, got '2GB'"
    with pytest.raises(SparkApplicationSpecError, match=r"^as said$"):
        require(False, "as said")


def test_a_shared_rule_words_every_fields_error_alike():
    SIZE.check("driver.memory", "2g")
    PRIORITY_CLASS_NAME.check("driver.placement.priority_class_name", None, optional=True)
    with pytest.raises(SparkApplicationSpecError) as raised:
        PRIORITY_CLASS_NAME.check("batch_scheduler.priority_class_name", None)
    assert str(raised.value) == ("batch_scheduler.priority_class_name must be a PriorityClass name "
                                 "(lowercase letters, digits, '-' and '.'), got None")
    with pytest.raises(SparkApplicationSpecError) as raised:
        SIZE.check("executor.memory_overhead", "6GB", optional=True)
    assert str(raised.value) == ("executor.memory_overhead must be a positive size with a unit k, m, g or t "
                                 "(e.g. '2g'), got '6GB'")
