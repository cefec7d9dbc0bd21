"""Patches over manifest dicts: JSON merge patch (RFC 7386), JSON patch
(RFC 6902, through the jsonpatch library) and Kubernetes' strategic merge
patch, plus the three-way patch `kubelab apply` sends.

A strategic merge differs from a merge patch only for lists: a list whose
field carries `patchStrategy: merge` in proto/ is merged element by element
- by `patchMergeKey` for objects (containers by name, ports by
containerPort), as a set for strings (finalizers) - instead of replaced.
The directives Kubernetes defines for it are honoured: `$patch: delete`,
`$patch: replace`, `$deleteFromPrimitiveList/<field>`, `$retainKeys`, and
`$setElementOrder/<field>` (accepted; order follows the patch).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from proto import meta_pb2

from ._errors import bad_request

_MERGE_KEY: Any = meta_pb2.patchMergeKey
_STRATEGY: Any = meta_pb2.patchStrategy
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    try:
        return jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as err:
        raise bad_request(f"the server rejected our request due to an error in our request: {err}") from None


# ------------------------------------------------------------------ strategic

def _options(field: FieldDescriptor | None) -> tuple[str, str]:
    if field is None:
        return "", ""
    opts = field.GetOptions()
    return opts.Extensions[_STRATEGY], opts.Extensions[_MERGE_KEY]


def _child(desc: Descriptor | None, key: str) -> tuple[FieldDescriptor | None, Descriptor | None]:
    """The field `key` of a message, and the message type of its values."""
    if desc is None:
        return None, None
    field = desc.fields_by_name.get(key)
    if field is None or field.type != FieldDescriptor.TYPE_MESSAGE:
        return field, None
    msg: Any = field.message_type
    if msg.GetOptions().map_entry:
        value = msg.fields_by_name["value"]
        return field, value.message_type if value.type == FieldDescriptor.TYPE_MESSAGE else None
    return field, msg


def _is_map_field(field: FieldDescriptor | None) -> bool:
    if field is None or field.type != FieldDescriptor.TYPE_MESSAGE:
        return False
    msg: Any = field.message_type
    return bool(msg.GetOptions().map_entry)


def strategic_merge(original: Any, patch: Any, desc: Descriptor | None) -> Any:
    """Apply a strategic merge patch to a manifest dict of message `desc`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith(_SET_ORDER):
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            name = key[len(_DELETE_PRIMITIVE):]
            drop = set(value or [])
            result[name] = [v for v in result.get(name) or [] if v not in drop]
            continue
        field, sub = _child(desc, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and not _is_map_field(field):
            result[key] = _merge_list(result.get(key), value, field, sub)
        elif isinstance(value, dict):
            if _is_map_field(field) and value.get("$patch") in ("replace", "delete"):
                if value["$patch"] == "delete":
                    result.pop(key, None)
                else:
                    result[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "$patch"}
            elif _is_map_field(field):
                merged = dict(result.get(key) or {})
                for k, v in value.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = strategic_merge(merged.get(k), v, sub)
                result[key] = merged
            else:
                merged_value = strategic_merge(result.get(key), value, sub)
                if merged_value is None:
                    result.pop(key, None)
                else:
                    result[key] = merged_value
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(original: Any, patch: list[Any], field: FieldDescriptor | None,
                sub: Descriptor | None) -> list[Any]:
    strategy, merge_key = _options(field)
    if strategy != "merge":
        return [v for v in copy.deepcopy(patch) if not (isinstance(v, dict) and v.get("$patch"))]
    current = list(original) if isinstance(original, list) else []
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    if not merge_key:  # a set of scalars, such as finalizers
        out = list(current)
        for v in patch:
            if v not in out:
                out.append(copy.deepcopy(v))
        return out
    out = [copy.deepcopy(v) for v in current]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
        idx = next((i for i, v in enumerate(out) if isinstance(v, dict) and v.get(merge_key) == item[merge_key]),
                   None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge({}, item, sub))
        else:
            out[idx] = strategic_merge(out[idx], item, sub)
    return out


def three_way_patch(original: Any, modified: Any, current: Any, desc: Descriptor | None) -> dict[str, Any]:
    """The strategic patch that turns `current` into `modified` while
    deleting what the user removed since `original` (their last apply) and
    keeping what others set (defaults, status, a controller's changes)."""
    if isinstance(original, dict) and original:
        original, modified = _settle(original, modified, current)
    return _three_way(original, modified, current, desc)


def _contained(want: Any, have: Any) -> bool:
    """Whether `have` holds everything in `want`, and maybe more: fields
    the server defaulted, list items appended after the user's."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contained(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) <= len(have) and all(
            _contained(w, h) for w, h in zip(want, have[:len(want)], strict=True))
    return bool(want == have)


def _settle(original: Any, modified: Any, current: Any) -> tuple[Any, Any]:
    """Take from the live object the lists the user left as they were last
    applied and the live object still holds, item for item, plus what the
    server filled in (a probe's defaults, a claim template's volumeMode) or
    appended (admission's not-ready/unreachable tolerations).

    A list without a merge strategy is replaced whole by a strategic patch,
    so comparing it with the defaulted live list would report a change on
    every apply and send the list again (kubectl does), undoing what others
    added. A list the user did change, or one in which someone else changed
    a value the user set, is still patched as usual."""
    if isinstance(modified, dict) and isinstance(original, dict) and isinstance(current, dict):
        new_original, new_modified = dict(original), dict(modified)
        for key, want in modified.items():
            if key in original and key in current:
                new_original[key], new_modified[key] = _settle(original[key], want, current[key])
        return new_original, new_modified
    if isinstance(modified, list) and isinstance(original, list) and isinstance(current, list):
        if modified == original and _contained(modified, current):
            return copy.deepcopy(current), copy.deepcopy(current)
        if len(modified) == len(original) == len(current):
            pairs = [_settle(o, m, c) for o, m, c in zip(original, modified, current, strict=True)]
            return [p[0] for p in pairs], [p[1] for p in pairs]
    return original, modified


def _three_way(original: Any, modified: Any, current: Any, desc: Descriptor | None) -> dict[str, Any]:
    original = original if isinstance(original, dict) else {}
    current = current if isinstance(current, dict) else {}
    patch: dict[str, Any] = {}
    for key, want in modified.items():
        field, sub = _child(desc, key)
        have = current.get(key)
        was = original.get(key)
        if key not in current:
            patch[key] = copy.deepcopy(want)
        elif isinstance(want, dict) and isinstance(have, dict):
            if _is_map_field(field):
                diff = {k: v for k, v in want.items() if have.get(k) != v}
                diff.update({k: None for k in (was or {}) if k not in want and k in have})
                if sub is not None:
                    diff = {k: (_three_way((was or {}).get(k), want[k], have.get(k), sub)
                                if k in want and isinstance(have.get(k), dict) else v)
                            for k, v in diff.items()}
                    diff = {k: v for k, v in diff.items() if v != {}}
            else:
                diff = _three_way(was, want, have, sub)
            if diff:
                patch[key] = diff
        elif isinstance(want, list) and isinstance(have, list):
            diff_list = _three_way_list(was if isinstance(was, list) else [], want, have, field, sub)
            if diff_list is not None:
                key_out, value = diff_list
                patch[key_out if key_out else key] = value
                if key_out and key_out != key:
                    patch.pop(key, None)
        elif want != have:
            patch[key] = copy.deepcopy(want)
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    return patch


def _three_way_list(was: list[Any], want: list[Any], have: list[Any], field: FieldDescriptor | None,
                    sub: Descriptor | None) -> tuple[str, Any] | None:
    strategy, merge_key = _options(field)
    if strategy != "merge":
        return None if want == have else ("", copy.deepcopy(want))
    if not merge_key:
        removed = [v for v in was if v not in want and v in have]
        added = [v for v in want if v not in have]
        if removed and field is not None:
            if not added:
                return _DELETE_PRIMITIVE + field.name, removed
            return "", [v for v in have if v not in removed] + added
        return ("", added) if added else None
    by_key_have = {v.get(merge_key): v for v in have if isinstance(v, dict)}
    want_keys = {v.get(merge_key) for v in want if isinstance(v, dict)}
    out: list[Any] = []
    for item in want:
        if not isinstance(item, dict):
            return "", copy.deepcopy(want)
        k = item.get(merge_key)
        current_item = by_key_have.get(k)
        if current_item is None:
            out.append(copy.deepcopy(item))
            continue
        old = next((v for v in was if isinstance(v, dict) and v.get(merge_key) == k), {})
        diff = _three_way(old, item, current_item, sub)
        if diff:
            out.append({merge_key: k, **diff})
    for item in was:
        if isinstance(item, dict) and item.get(merge_key) not in want_keys and item.get(merge_key) in by_key_have:
            out.append({merge_key: item.get(merge_key), "$patch": "delete"})
    return ("", out) if out else None
