"""`kubelab down` leaves the host as it was (flow 9 of the issue).

This runs last for each proxy mode (conftest.FLOW_ORDER): it takes the
lab down the way `kubelab down` does and compares the host with the snapshot taken before `up`: network
namespaces, the root namespace's links, routes, iptables and nftables
rules, mounts, processes naming the lab's state directory and the nodes'
cgroups (see _host.py for how the lab's own changes are told apart from
whatever else changes on a shared host meanwhile).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyroute2 import netns

from .conftest import LabSession


def test_down_leaves_the_host_as_it_was(lab_session: LabSession) -> None:
    if lab_session.reused:
        pytest.skip("KUBELAB_E2E_LAB: a lab this run did not start is left running")
    lab = lab_session.lab
    pods = [d for d in lab.state_dir.glob("nodes/*/crishim/sandboxes/*")]
    assert pods, "the flows ran pods, so there are sandboxes to clean up"
    left = lab_session.down()
    assert not left, "kubelab down left behind:\n  " + "\n  ".join(left)
    assert not lab.state_dir.exists()
    assert not [n for n in netns.listnetns() if n.startswith(lab.prefix + "-")]
    assert not any(Path("/sys/fs/cgroup").glob(f"*/kubelab/{lab.prefix}-*"))
