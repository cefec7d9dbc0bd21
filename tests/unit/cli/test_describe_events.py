"""describe's events: found with kubectl's field selector, or - when the
server does not support that selector for Events - filtered client-side,
with the same result; and rendered as kubectl's Events table."""

from __future__ import annotations

from typing import Any

from api import bad_request, from_dict
from client import ObjectList
from kubelab._describe import Writer, find_events, write_events
from kubelab._resources import resolve_kind
from proto import core_pb2

POD = from_dict(core_pb2.Pod, {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}})


def event(name: str, kind: str, obj: str, namespace: str = "ns", uid: str = "", reason: str = "Started",
          count: int = 1, when: str = "2024-01-01T00:00:00Z") -> core_pb2.Event:
    return from_dict(core_pb2.Event, {
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": kind, "name": obj, "namespace": namespace, "uid": uid},
        "reason": reason, "message": f"{reason} {name}  ", "type": "Normal", "count": count,
        "source": {"component": "kubelet", "host": "node-1"}, "firstTimestamp": when, "lastTimestamp": when})


EVENTS = [event("b", "Pod", "web", uid="u1", when="2024-01-01T00:00:09Z"),
          event("a", "Pod", "web", when="2024-01-01T00:00:01Z"),
          event("c", "Service", "web"), event("d", "Pod", "webber"), event("e", "Pod", "web", uid="old-uid")]


class EventsWithoutSelector:
    """Events as a server holds them that refuses involvedObject selectors."""

    def __init__(self) -> None:
        self.selectors: list[str] = []

    async def list_all(self, *, field_selector: str = "", **_: Any) -> ObjectList[Any]:
        self.selectors.append(field_selector)
        if field_selector:
            raise bad_request(f"field label not supported: {field_selector.split('=')[0]}")
        return ObjectList(list(EVENTS), "1")


class Clientset:
    def __init__(self) -> None:
        self.events = EventsWithoutSelector()

    def resource(self, kind: Any, namespace: str = "") -> EventsWithoutSelector:
        assert kind is core_pb2.Event and namespace == "ns"
        return self.events


async def test_events_are_filtered_here_when_the_server_cannot() -> None:
    cs = Clientset()
    found = await find_events(cs, POD, resolve_kind("pods"))  # type: ignore[arg-type]
    assert cs.events.selectors == ["involvedObject.name=web,involvedObject.namespace=ns", ""]
    assert [e.metadata.name for e in found] == ["a", "b"]  # oldest first; not the Service's, nor old-uid's


def test_events_table() -> None:
    w = Writer()
    w.write(0, "Name:\tweb")
    write_events(w, [event("a", "Pod", "web", count=3)])
    lines = w.text().splitlines()
    assert lines[1] == "Events:"
    assert lines[2].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[3].split() == ["----", "------", "----", "----", "-------"]
    assert lines[4].startswith("  Normal  Started ") and "(x3 over " in lines[4]
    assert lines[4].endswith("kubelet, node-1  Started a")
    w = Writer()
    w.write(0, "Name:\tweb")
    write_events(w, [])
    assert w.text() == "Name:    web\nEvents:  <none>\n"
