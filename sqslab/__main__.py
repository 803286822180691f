"""`python -m sqslab` runs the command line."""

from sqslab.cli import main

if __name__ == "__main__":
    main()
