"""The controller-manager: one process running the controllers, each in a
module of its own, all on the shared client library (informer -> work queue
-> `sync(key)`, see _controller.py), leader-elected on a Lease so that of
several replicas exactly one acts. `python -m controller_manager --help`
lists the controllers and their flags.
"""
