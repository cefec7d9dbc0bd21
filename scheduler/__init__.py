"""The scheduler process (`python -m scheduler`): it watches unscheduled
pods and binds each to a node through the apiserver, the way
kube-scheduler does.

Until it runs, pods keep an empty `spec.nodeName` unless a manifest sets
one. With it, every pod whose `schedulerName` one of its profiles serves
(`default-scheduler` unless `--config` says more) goes through:

* the queue (_queue.py): activeQ by priority then age, backoffQ (1 s to
  10 s), and unschedulable pods that wait for a cluster event that could
  help them (a node added or changed, a pod deleted, a taint removed);
* the framework (framework/): per profile, PreFilter, Filter, PostFilter
  (preemption), PreScore, Score, NormalizeScore, Reserve and Bind, run by
  plugins (plugins/) that a registry maps by name;
* the cache (_cache.py): nodes and the pods on them, with running totals
  per node, and pods assumed on a node while their binding is in flight,
  so that concurrent bindings never overcommit a node;
* the binding: the pods/binding subresource, which sets spec.nodeName and
  the PodScheduled condition in one compare-and-swap write and refuses to
  move a bound pod.

A pod that fits nowhere stays Pending with PodScheduled=False and a
FailedScheduling event that counts, per reason, the nodes that failed it:
`0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated
taint {dedicated: gpu}.` Two replicas elect a leader on the Lease
`kube-system/kube-scheduler`; only the leader binds, and the standby takes
over within the lease duration when the leader dies. `/metrics` has
kube-scheduler's scheduling metrics; `--help` lists the flags.
"""
