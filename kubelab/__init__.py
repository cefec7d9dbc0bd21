"""`kubelab`: the command line, kubectl's verbs and flags over kubelab's API.

kubectl's habits should carry over unchanged: `kubelab get po -A -o wide`,
`kubelab apply -f dir/ -R`, `kubelab delete deploy/web --cascade=orphan`.
Output is plain text in kubectl's shapes (tables aligned the way its
tabwriter aligns them, `Error from server (NotFound): ...` for the server's
refusals, `error: ...` for the client's own, exit code 1 on any error), so
a user reading kubectl documentation finds what they expect.

The package is the command line only. The public entry point is `main()` in
`_cli` (the `kubelab` console script, and `python -m kubelab`); each verb
lives in its own private module and is imported only when it runs, so a
command starts without loading the others.
"""
