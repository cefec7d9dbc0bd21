"""What the user asked for: resource arguments and manifest files.

kubectl reads its resource arguments in three shapes, and so does this:

* `TYPE[,TYPE...] [NAME...]` - `get po,svc`, `delete pod a b`;
* `TYPE/NAME...` - `get po/a deploy/web` (then every argument has a slash);
* `all` - the kinds whose categories include "all".

Types are resolved through the scheme by any name users type (`po`, `pods`,
`pod`, `deployments.apps`, `deploy`). Files (`-f FILE|DIR|-`, `-R`) are read
as multi-document YAML or JSON; each object carries the file it came from,
so errors can say `error when creating "x.yaml": ...`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._session import CLIError, Session

if TYPE_CHECKING:
    from api import Kind

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class ResourceRequest:
    """One kind, and the names asked for (empty: every object)."""

    kind: Kind
    names: tuple[str, ...] = ()


def resolve_kind(name: str) -> Kind:
    from api import SCHEME, UnknownKindError
    if not name:
        raise CLIError("resource type must not be empty")
    try:
        return SCHEME.lookup(name)
    except UnknownKindError as err:
        raise CLIError(str(err)) from None


def kinds_in_category(category: str) -> list[Kind]:
    from api import SCHEME
    return [k for k in SCHEME if category in k.categories]


def parse_resource_args(args: Sequence[str]) -> list[ResourceRequest]:
    """The requests in `args`, in the order given; raises CLIError for the
    shapes kubectl refuses."""
    if not args:
        return []
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CLIError("there is no need to specify a resource type as a separate argument when passing "
                           "arguments in resource/name form (e.g. 'kubelab get resource/<resource_name>' "
                           "instead of 'kubelab get resource resource/<resource_name>'")
        out: list[ResourceRequest] = []
        for arg in args:
            type_name, _, name = arg.partition("/")
            if not name or "/" in name:
                raise CLIError(f"arguments in resource/name form must have a single resource and name: {arg!r}")
            kind = resolve_kind(type_name)
            if out and out[-1].kind == kind:
                out[-1] = ResourceRequest(kind, (*out[-1].names, name))
            else:
                out.append(ResourceRequest(kind, (name,)))
        return out
    types, names = args[0], tuple(args[1:])
    kinds: list[Kind] = []
    for type_name in types.split(","):
        if type_name == "all":
            kinds.extend(k for k in kinds_in_category("all") if k not in kinds)
        elif type_name:
            kind = resolve_kind(type_name)
            if kind not in kinds:
                kinds.append(kind)
    if not kinds:
        raise CLIError(f'the server doesn\'t have a resource type "{types}"')
    return [ResourceRequest(k, names) for k in kinds]


def several_kinds(args: Sequence[str], requests: Sequence[ResourceRequest]) -> bool:
    """kubectl prefixes names with their kind (`pod/nginx`) when more than
    one type was asked for, or `all`."""
    if len({r.kind for r in requests}) > 1:
        return True
    return bool(args) and "/" not in args[0] and any(t == "all" for t in args[0].split(","))


# ---------------------------------------------------------------- files


@dataclass(frozen=True)
class Manifest:
    """One object read from a file: its raw document and where it came from."""

    doc: Any
    source: str

    @property
    def name(self) -> str:
        meta = self.doc.get("metadata") if isinstance(self.doc, dict) else None
        return str(meta.get("name") or "") if isinstance(meta, dict) else ""

    @property
    def namespace(self) -> str:
        meta = self.doc.get("metadata") if isinstance(self.doc, dict) else None
        return str(meta.get("namespace") or "") if isinstance(meta, dict) else ""


def _files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if not p.exists():
        raise CLIError(f'the path "{path}" does not exist')
    if p.is_file():
        return [p]
    pattern = "**/*" if recursive else "*"
    return sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)


def read_manifests(paths: Sequence[str], recursive: bool = False, verb: str = "apply") -> list[Manifest]:
    """Every object in the files (stdin for "-"), `kind: List` expanded.
    A file that does not parse is an error naming the file and line."""
    from api import StatusError, load_documents
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            sources = [("-", sys.stdin.read())]
        else:
            sources = []
            for f in _files(path, recursive):
                try:
                    sources.append((str(f), f.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError) as err:
                    raise CLIError(f"error reading {f}: {err}") from None
        for source, text in sources:
            try:
                docs = load_documents(text, source)
            except StatusError as err:
                raise CLIError(err.message) from None
            out.extend(Manifest(doc, source) for doc in docs)
    if not out:
        raise CLIError(f"no objects passed to {verb}" if paths else "must specify -f")
    return out


def manifest_kind(m: Manifest) -> Kind:
    """The kind a manifest names, or kubectl's "resource mapping not found"."""
    from api import StatusError, kind_of_manifest
    try:
        return kind_of_manifest(m.doc)
    except StatusError as err:
        if err.message.startswith("no matches for kind"):
            raise CLIError(f'resource mapping not found for name: "{m.name}" namespace: "{m.namespace}" from '
                           f'"{m.source}": {err.message}\nensure CRDs are installed first') from None
        raise CLIError(f'error validating "{m.source}": error validating data: {err.message}') from None


def target_namespace(kind: Kind, manifest_ns: str, namespace: str, explicit: bool) -> str:
    """Where an object from a file goes: its own namespace, unless -n named
    another (an error), else -n / the context's namespace."""
    if not kind.namespaced:
        return ""
    if manifest_ns:
        if explicit and manifest_ns != namespace:
            raise CLIError(f'the namespace from the provided object "{manifest_ns}" does not match the namespace '
                           f'"{namespace}". You must pass \'--namespace={manifest_ns}\' to perform this operation.')
        return manifest_ns
    return namespace


#: What `scale` and `autoscale` work on.
SCALABLE = ("deployments.apps", "replicasets.apps", "statefulsets.apps", "replicationcontrollers")


def named_objects(session: Session, args: Sequence[str], filenames: Sequence[str],
                  verb: str) -> list[tuple[Kind, str, str]]:
    """(kind, namespace, name) for TYPE NAME..., TYPE/NAME... or -f FILE."""
    if filenames:
        out = []
        for m in read_manifests(filenames, verb=verb):
            kind = manifest_kind(m)
            out.append((kind, target_namespace(kind, m.namespace, session.namespace, session.namespace_explicit),
                        m.name))
        return out
    requests = parse_resource_args(args)
    if not requests:
        raise CLIError("You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                       "   '<resource> <name>'\n   '<resource>'")
    if not any(r.names for r in requests):
        raise CLIError("resource(s) were provided, but no name was specified")
    return [(r.kind, session.namespace, name) for r in requests for name in r.names]
