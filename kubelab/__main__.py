"""`python -m kubelab ...`: the same command line as the `kubelab` script."""

from kubelab._cli import main

if __name__ == "__main__":
    main()
