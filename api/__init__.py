"""The API machinery every component shares (apimachinery's role).

Public surface:

* the scheme of kinds (`SCHEME`, `Kind`) and the manifest codec
  (`decode_manifest`, `encode_manifest`, `from_dict`, `to_dict`,
  `load_documents`, `dump_yaml`);
* the error tree (`StatusError` and its constructors, `FieldError`);
* value types: `Quantity`, int-or-string helpers;
* label and field selectors;
* patches (merge, strategic merge, JSON, three-way);
* name and label syntax checks;
* time: `Clock`, `RealClock`, `FakeClock` and RFC 3339 helpers.

The generated messages live in the `proto` package beside their .proto files.
"""

from ._clock import Clock, FakeClock, RealClock, human_duration, parse_time, rfc3339, rfc3339_micro
from ._codec import (
    decode_manifest,
    dump_yaml,
    dump_yaml_documents,
    encode_manifest,
    from_dict,
    kind_of_manifest,
    load_documents,
    to_dict,
)
from ._errors import (
    FieldError,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    duplicate,
    forbidden,
    forbidden_field,
    gone,
    internal,
    invalid,
    invalid_object,
    new_error,
    not_found,
    not_found_field,
    not_supported,
    qualified,
    required,
    stale_update,
    too_large,
    too_long,
    too_many,
    too_many_requests,
    unauthorized,
)
from ._fields import FieldRequirement, FieldSelector, FieldSelectorError, parse_field_selector
from ._imageref import ImageReference, InvalidReference, default_pull_policy, is_image_id, parse_image_reference
from ._intstr import int_or_string, scaled_value, value_of
from ._labels import (
    Requirement,
    Selector,
    SelectorError,
    format_labels,
    parse_selector,
    selector_from_map,
    selector_from_message,
)
from ._patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    json_merge_patch,
    json_patch,
    strategic_merge,
    three_way_patch,
)
from ._quantity import Format, Quantity, QuantityError, canonical_quantity, parse_quantity
from ._scheme import KINDS, SCHEME, Kind, Scheme, UnknownKindError
from ._validation import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_label_value,
    is_port_name,
    is_port_number,
    is_qualified_name,
    is_valid_ip,
)

__all__ = [
    "JSON_PATCH",
    "KINDS",
    "MERGE_PATCH",
    "SCHEME",
    "STRATEGIC_MERGE_PATCH",
    "Clock",
    "FakeClock",
    "FieldError",
    "FieldRequirement",
    "FieldSelector",
    "FieldSelectorError",
    "Format",
    "ImageReference",
    "InvalidReference",
    "Kind",
    "Quantity",
    "QuantityError",
    "RealClock",
    "Requirement",
    "Scheme",
    "Selector",
    "SelectorError",
    "StatusError",
    "UnknownKindError",
    "already_exists",
    "bad_request",
    "canonical_quantity",
    "conflict",
    "decode_manifest",
    "default_pull_policy",
    "dump_yaml",
    "dump_yaml_documents",
    "duplicate",
    "encode_manifest",
    "forbidden",
    "forbidden_field",
    "format_labels",
    "from_dict",
    "gone",
    "human_duration",
    "int_or_string",
    "internal",
    "invalid",
    "invalid_object",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_env_var_name",
    "is_image_id",
    "is_label_value",
    "is_port_name",
    "is_port_number",
    "is_qualified_name",
    "is_valid_ip",
    "json_merge_patch",
    "json_patch",
    "kind_of_manifest",
    "load_documents",
    "new_error",
    "not_found",
    "not_found_field",
    "not_supported",
    "parse_field_selector",
    "parse_image_reference",
    "parse_quantity",
    "parse_selector",
    "parse_time",
    "qualified",
    "required",
    "rfc3339",
    "rfc3339_micro",
    "scaled_value",
    "selector_from_map",
    "selector_from_message",
    "stale_update",
    "strategic_merge",
    "three_way_patch",
    "to_dict",
    "too_large",
    "too_long",
    "too_many",
    "too_many_requests",
    "unauthorized",
    "value_of",
]
