"""Unit tests of the kubelab command line's own logic (no server needed)."""
