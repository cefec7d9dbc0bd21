"""The Deployment controller: declarative rollouts of a pod template over
ReplicaSets, split by concern as Kubernetes' own is:

* controller.py - informers, event handlers, and `sync(key)`, which picks
  the concern below that handles the Deployment now;
* sync.py - claiming ReplicaSets, the new ReplicaSet and revisions,
  scaling (proportional during a rollout), history clean-up, status;
* rolling.py - the RollingUpdate strategy (maxSurge / maxUnavailable);
* recreate.py - the Recreate strategy;
* rollback.py - the server-side rollback annotation;
* progress.py - the Progressing condition, progressDeadlineSeconds, pause;
* util.py - the arithmetic and annotations, as pure functions.
"""

from .controller import DeploymentController

__all__ = ["DeploymentController"]
